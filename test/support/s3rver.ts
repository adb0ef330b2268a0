import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "minio";
import type { StoreDescriptor } from "../../src/store/backup-store.ts";

const S3RVER = resolve(import.meta.dir, "../../node_modules/.bin/s3rver");

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** Where s3rver keeps the bucket's objects as files (a test may age one: listings date it by its mtime). */
  dir: string;
  descriptor(overrides?: Partial<Extract<StoreDescriptor, { kind: "s3" }>>): Extract<StoreDescriptor, { kind: "s3" }>;
  /** A plain S3 client on the bucket, for a test to look at or change objects behind the store's back. */
  client(): Client;
  stop(): Promise<void>;
}

/** A free TCP port on loopback, found by binding port 0 and letting it go. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A real S3 server over HTTP: s3rver in its own Node process (see ../shared/S3-NOTES.md), on a free port,
 * with its own temp directory and one bucket. Credentials are s3rver's fixed S3RVER/S3RVER.
 */
export async function startS3rver(bucket = "backups-test"): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), "s3rver-"));
  const port = await freePort();
  const child: ChildProcess = spawn("node", [S3RVER, "-d", dir, "-a", "127.0.0.1", "-p", String(port), "--configure-bucket", bucket, "--silent"], {
    env: { ...process.env, NODE_OPTIONS: "--openssl-legacy-provider" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      await fetch(`${endpoint}/`);
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`s3rver did not start: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    endpoint,
    bucket,
    dir,
    descriptor: (overrides = {}) => ({
      kind: "s3", endpoint, bucket, region: "us-east-1", accessKey: "S3RVER", secret: "S3RVER", forcePathStyle: true,
      retry: { attempts: 4, baseDelayMs: 20 }, ...overrides,
    }),
    client: () =>
      new Client({ endPoint: "127.0.0.1", port, useSSL: false, accessKey: "S3RVER", secretKey: "S3RVER", pathStyle: true, region: "us-east-1" }),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
