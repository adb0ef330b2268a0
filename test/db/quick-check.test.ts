import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFile, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "libsql";
import { openForCheck, quickCheck, quickCheckInWorker } from "../../src/db/quick-check.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { makeTempDir } from "../support/test-server.ts";

let dir: string;
let healthy: string;
beforeAll(async () => {
  dir = await makeTempDir();
  await seedDataDir(dir, { rows: 2000 });
  healthy = join(dir, "data.db");
  // Everything into the main file, so that its pages can be damaged below.
  const db = new Database(healthy);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  expect((await readFile(healthy)).length).toBeGreaterThan(8192);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A copy of the healthy database with its second page overwritten: the header still says SQLite. */
async function damagedCopy(): Promise<string> {
  const bytes = await readFile(healthy);
  bytes.fill(0x41, 4096, 8192);
  const path = join(dir, "damaged.db");
  await writeFile(path, bytes);
  return path;
}

test("a healthy database passes, on the calling thread and on a worker thread alike", async () => {
  expect(await quickCheck(healthy)).toEqual([]);
  expect(await quickCheckInWorker(healthy)).toEqual([]);
});

test("the check reads the file through a memory mapping that covers all of it", async () => {
  const db = openForCheck(healthy);
  try {
    const [mapped] = db.prepare("PRAGMA mmap_size").raw().get() as [number];
    expect(mapped).toBeGreaterThanOrEqual((await readFile(healthy)).length);
  } finally {
    db.close();
  }
});

test("a damaged page is reported by the worker as SQLite's problems, the same as inline", async () => {
  const damaged = await damagedCopy();
  const problems = await quickCheckInWorker(damaged);
  expect(problems.length).toBeGreaterThan(0);
  expect(problems).toEqual(await quickCheck(damaged));
});

test("a file that is not a database rejects with SQLite's message; checks run at once each answer for their own file", async () => {
  const notDb = join(dir, "not.db");
  await writeFile(notDb, "x".repeat(8192));
  const error = await quickCheckInWorker(notDb).catch((e: Error) => e);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toMatch(/not a database/);
  // Several at once, each answered for its own file.
  await copyFile(healthy, join(dir, "copy.db"));
  const results = await Promise.all([quickCheckInWorker(join(dir, "copy.db")), quickCheckInWorker(notDb).catch(() => "refused")]);
  expect(results).toEqual([[], "refused"]);
});

test("a check whose thread ends without answering rejects instead of leaving a restore waiting", async () => {
  const error = await quickCheckInWorker(healthy, new URL("../support/exiting.worker.ts", import.meta.url)).catch((e: Error) => e);
  expect((error as Error).message).toBe("The database check ended without an answer.");
});
