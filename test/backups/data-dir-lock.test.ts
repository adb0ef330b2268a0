import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { acquireDataDirLock, DataDirLockedError, dataDirLockOwner, LOCK_FILE } from "../../src/backups/data-dir-lock.ts";
import { makeTempDir } from "../support/test-server.ts";

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir("backstream-lock-");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("one holder at a time; released once; the file names the owner", async () => {
  const release = await acquireDataDirLock(dir, "server");
  const owner = JSON.parse(await readFile(join(dir, LOCK_FILE), "utf8"));
  expect(owner).toMatchObject({ pid: process.pid, holder: "server" });
  expect(await dataDirLockOwner(dir)).toEqual(owner);
  const error = await acquireDataDirLock(dir, "backup create").catch((e) => e);
  expect(error).toBeInstanceOf(DataDirLockedError);
  expect(error.message).toBe(`A backstream server (pid ${process.pid}) is running on this data directory; stop it or use its API instead.`);
  await release();
  await release();
  expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  await (await acquireDataDirLock(dir, "backup create"))();
});

test("a dead owner's lock, a torn file, and one left by an instance of this process are stale and recovered", async () => {
  const child = Bun.spawn([process.execPath, "-e", "0"]);
  await child.exited;
  for (const content of [
    JSON.stringify({ pid: child.pid, holder: "server", startedAt: "", token: "a" }),
    "{\"pid\": 12", // crashed mid-write
    JSON.stringify({ pid: process.pid, holder: "server", startedAt: "", token: "not-held-here" }),
  ]) {
    await writeFile(join(dir, LOCK_FILE), content);
    expect(await dataDirLockOwner(dir)).toBeUndefined();
    const release = await acquireDataDirLock(dir, "backup restore");
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), "utf8")).holder).toBe("backup restore");
    await release();
  }
});
