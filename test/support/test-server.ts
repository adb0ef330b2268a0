import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import PocketBase from "pocketbase";
import { loadConfig } from "../../src/config.ts";
import type { JobRunner } from "../../src/backups/backup-service.ts";
import { createMemoryLogger } from "../../src/logger.ts";
import { startServer, type RunningServer } from "../../src/server.ts";

export const ADMIN_EMAIL = "admin@example.com";
export const ADMIN_PASSWORD = "correct-horse-battery";

export interface TestServer extends RunningServer {
  dir: string;
  logs: string[];
  /** A logged-in SDK client. */
  pb: PocketBase;
  /** A fresh, logged-out SDK client. */
  client(): PocketBase;
  /** Stops the server and removes its data directory. */
  close(): Promise<void>;
}

/** A temp data directory of its own (or the given one), so tests never share state. */
export async function makeTempDir(prefix = "backstream-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * The real server, in-process, on a free port (`port: 0`), with real worker threads and a real libSQL file,
 * and the official SDK logged in as a superuser.
 */
export async function startTestServer(options: { dir?: string; env?: Record<string, string>; runJob?: JobRunner } = {}): Promise<TestServer> {
  const dir = options.dir ?? (await makeTempDir());
  const config = loadConfig(
    { http: "127.0.0.1:0", dir },
    { PB_SUPERUSER_EMAIL: ADMIN_EMAIL, PB_SUPERUSER_PASSWORD: ADMIN_PASSWORD, BACKSTREAM_RESTORE_DELAY_MS: "50", ...options.env },
  );
  const log = createMemoryLogger();
  const server = await startServer(config, { log, ...(options.runJob ? { runJob: options.runJob } : {}) });
  const client = () => {
    const pb = new PocketBase(server.url);
    pb.autoCancellation(false);
    return pb;
  };
  const pb = client();
  await pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  return {
    ...server,
    dir,
    logs: log.lines,
    pb,
    client,
    async close() {
      await server.stop();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The value of `field` (a number or a word) in one of the server's log lines. */
export const logLineField = (line: string, field: string): string | undefined => new RegExp(`${field}[":= ]+"?([\\w.-]+)`).exec(line)?.[1];

/** What the server logged as `field` on its last `event` line about `key`; throws without one. */
export function loggedField(server: TestServer, event: string, key: string, field: string): string | undefined {
  const line = server.logs.findLast((l) => l.includes(event) && l.includes(key));
  if (!line) throw new Error(`no "${event}" line for ${key}`);
  return logLineField(line, field);
}

/** Waits for a condition, polling; fails with `message` after `timeoutMs`. Never a fixed sleep. */
export async function waitFor<T>(check: () => T | Promise<T>, message: string, timeoutMs = 30000): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, false | 0 | "" | null | undefined>;
    if (Date.now() > deadline) throw new Error(`Timed out waiting: ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A raw HTTP call that returns status and parsed JSON body, for asserting exact error shapes. */
export async function call(url: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("Authorization", init.token);
  const response = await fetch(url, { ...init, headers });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body, headers: response.headers };
}
