import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { seedDataDir } from "../support/data-dir.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, makeTempDir, startTestServer, type TestServer } from "../support/test-server.ts";
import { checkZipIndependently } from "../support/zip-check.ts";

const SCRIPT = join(import.meta.dir, "..", "..", "examples", "offsite-backup.mjs");
const OWN_NAME = /^offsite_\d{8}_\d{6}_\d{3}\.zip$/;

let server: TestServer;
let offsite: string;

beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir, { rows: 200, files: 3 });
  server = await startTestServer({ dir });
  offsite = await makeTempDir("backstream-offsite-");
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
  await rm(offsite, { recursive: true, force: true });
});

/** The example as a user runs it: Node (not Bun), its own process, settings in the environment. */
async function runExample(env: Record<string, string>) {
  const proc = Bun.spawn(["node", SCRIPT], {
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", BACKSTREAM_URL: server.url, BACKSTREAM_EMAIL: ADMIN_EMAIL, BACKSTREAM_PASSWORD: ADMIN_PASSWORD, OFFSITE_DIR: offsite, ...env },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const sha256 = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");

test("copies a verified backup off-site, byte for byte, and keeps only the newest copies on both sides", async () => {
  await server.pb.backups.create("manual.zip");
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await runExample({ KEEP_LOCAL: "2", KEEP_ON_SERVER: "1" }));
  for (const run of runs) expect(run).toMatchObject({ code: 0, stderr: "" });
  expect(runs[2]!.stdout).toContain("removed 1 old copies here and 1 on the server");

  const copies = (await readdir(offsite)).sort();
  expect(copies).toHaveLength(2); // no .part file left either
  for (const name of copies) expect(name).toMatch(OWN_NAME);
  const onServer = (await server.pb.backups.getFullList()).map((b) => b.key).sort();
  const newest = copies.at(-1)!;
  expect(onServer).toEqual(["manual.zip", newest]); // the manual backup is never pruned
  expect(runs[2]!.stdout).toStartWith(`${newest}: `);

  const copy = join(offsite, newest);
  expect(await sha256(copy)).toBe(await sha256(join(server.dir, "backups", newest)));
  expect(runs[2]!.stdout).toContain(`sha256 ${await sha256(copy)}`);
  checkZipIndependently(copy);
});

test("a wrong password fails with the server's message, exit 1, the password nowhere in the output", async () => {
  const before = await readdir(offsite);
  const run = await runExample({ BACKSTREAM_PASSWORD: "not-the-password-42" });
  expect(run.code).toBe(1);
  expect(run.stderr).toBe("offsite-backup: Could not log in (HTTP 400: Failed to authenticate.)\n");
  expect(run.stdout + run.stderr).not.toContain("not-the-password-42");
  expect(await readdir(offsite)).toEqual(before);
});

test("a download corrupted on the way is refused by its SHA-256 and nothing is kept", async () => {
  // Between the script and the server: passes everything through, but flips one byte of every download.
  const proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const headers = new Headers(request.headers);
      headers.delete("host");
      const body = request.method === "GET" ? undefined : await request.arrayBuffer();
      const response = await fetch(`${server.url}${url.pathname}${url.search}`, { method: request.method, headers, body });
      if (!(request.method === "GET" && url.searchParams.has("token"))) return response;
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[bytes.length >> 1]! ^= 0xff;
      const passed = new Headers(response.headers);
      passed.delete("content-length");
      passed.delete("content-encoding");
      return new Response(bytes, { status: response.status, headers: passed });
    },
  });
  try {
    const before = await readdir(offsite);
    const run = await runExample({ BACKSTREAM_URL: `http://127.0.0.1:${proxy.port}` });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^offsite-backup: The download of offsite_\d{8}_\d{6}_\d{3}\.zip does not match the server's SHA-256: nothing was kept; run again\.\n$/);
    expect(await readdir(offsite)).toEqual(before);
  } finally {
    proxy.stop(true);
  }
});

test("missing settings and a bad PREFIX are refused before anything runs", async () => {
  const missing = await runExample({ OFFSITE_DIR: "" });
  expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining("Set OFFSITE_DIR, BACKSTREAM_EMAIL and BACKSTREAM_PASSWORD") });
  const prefix = await runExample({ PREFIX: "../evil" });
  expect(prefix).toMatchObject({ code: 1, stderr: "offsite-backup: PREFIX may hold only a-z, 0-9, _ and -, as backup names do.\n" });
  const keep = await runExample({ KEEP_LOCAL: "0" });
  expect(keep).toMatchObject({ code: 1, stderr: "offsite-backup: KEEP_LOCAL must be a whole number of at least 1.\n" });
});
