import { afterEach, expect, test } from "bun:test";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { JobRunner } from "../../src/backups/backup-service.ts";
import { runJobInWorker } from "../../src/jobs/run-job.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { call, makeTempDir, startTestServer, type TestServer } from "../support/test-server.ts";

const EXITING_WORKER = new URL("../support/exiting.worker.ts", import.meta.url);
const dyingRunner: JobRunner = (params, context) => runJobInWorker(params, context, EXITING_WORKER);

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  if (server) await rm(server.dir, { recursive: true, force: true });
  server = undefined;
});

test("a job worker that ends without answering fails its job instead of leaving it waiting", async () => {
  const dir = await makeTempDir();
  try {
    // Caught rather than `expect(...).rejects`: Bun's matcher has hung on promises rejected from worker events.
    const error = await runJobInWorker({ kind: "create", dataDir: dir, store: { kind: "local", dir }, key: "a.zip", producer: "test", level: 2 }, {}, EXITING_WORKER).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe("The job worker ended before its job finished.");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("after a job worker dies, the API answers with the PocketBase error and the next backup is not locked out", async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir, { rows: 50, files: 2 });
  server = await startTestServer({ dir, runJob: dyingRunner });
  const token = server.pb.authStore.token;
  const first = await call(`${server.url}/api/backups`, { method: "POST", token, headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "one.zip" }) });
  expect(first.status).toBe(400);
  expect(first.body).toEqual({ status: 400, message: "Failed to create backup.", data: {} });
  // Had the job lock stayed held, this would be refused as "already in progress" instead of being tried.
  const second = await call(`${server.url}/api/backups`, { method: "POST", token, headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "two.zip" }) });
  expect(second).toMatchObject({ status: 400, body: { message: "Failed to create backup." } });
  const list = await call(`${server.url}/api/backups`, { token });
  expect(list).toMatchObject({ status: 200, body: [] });
  expect(await readdir(join(server.dir, "backups")).catch(() => [])).toEqual([]);
});
