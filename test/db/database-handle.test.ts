import { expect, test } from "bun:test";
import { fstatSync, statSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseHandle, openDatabase } from "../../src/db/database-handle.ts";
import { makeTempDir } from "../support/test-server.ts";

/** Another process (the app) that takes the write lock, says so, holds it for `ms`, then commits. */
const HOLD_LOCK = `
import { createClient } from "@libsql/client";
const app = createClient({ url: "file:" + process.argv[1] });
const tx = await app.transaction("write");
await tx.execute("INSERT INTO t VALUES ('app')");
console.log("locked");
await new Promise((resolve) => setTimeout(resolve, Number(process.argv[2])));
await tx.commit();
app.close();
`;

test("every pooled connection waits for another process's lock instead of failing with SQLITE_BUSY", async () => {
  const dir = await makeTempDir();
  const path = join(dir, "data.db");
  const ours = await openDatabase(path);
  try {
    await ours.execute("CREATE TABLE t (x)");
    // Our first connection is held by a transaction, so the next statement runs on a second pooled connection:
    // the one a PRAGMA busy_timeout never reached.
    const held = await ours.transaction("read");
    await held.execute("SELECT count(*) FROM t");
    const app = Bun.spawn([process.execPath, "-e", HOLD_LOCK, path, "300"], { cwd: process.cwd(), stdout: "pipe" });
    const reader = app.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("locked");
    await ours.execute("INSERT INTO t VALUES ('ours')");
    expect(await app.exited).toBe(0);
    held.close();
    expect((await ours.execute("SELECT x FROM t ORDER BY rowid")).rows.map((r) => r[0])).toEqual(["app", "ours"]);
  } finally {
    ours.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** A database file at `path` whose table `t` holds `value`. */
async function fileHolding(path: string, value: string): Promise<void> {
  const client = await openDatabase(path);
  await client.execute("CREATE TABLE t (x)");
  await client.execute({ sql: "INSERT INTO t VALUES (?)", args: [value] });
  await client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  client.close();
}

test("a query asked for while a restore swaps the file waits and runs on the new file", async () => {
  const dir = await makeTempDir();
  const path = join(dir, "data.db");
  await fileHolding(path, "old");
  await fileHolding(join(dir, "new.db"), "new");
  const handle = new DatabaseHandle(path);
  await handle.open();
  try {
    let during: Promise<unknown> | undefined;
    let settledDuringSwap = false;
    await handle.reopenAround(async () => {
      // The connection is closed here: the query must neither fail nor run on the old file.
      during = handle.execute("SELECT x FROM t").then(
        (result) => result.rows.map((r) => r[0]),
        (error: Error) => error.message,
      );
      during.finally(() => (settledDuringSwap = true));
      await rm(join(dir, "data.db-wal"), { force: true });
      await rm(join(dir, "data.db-shm"), { force: true });
      await rename(join(dir, "new.db"), path);
      await Promise.resolve();
      expect(settledDuringSwap).toBe(false);
    });
    expect(await during).toEqual(["new"]);
  } finally {
    await handle.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a swap that fails reopens the old file, and queries that waited run on it", async () => {
  const dir = await makeTempDir();
  const path = join(dir, "data.db");
  await fileHolding(path, "old");
  const handle = new DatabaseHandle(path);
  await handle.open();
  try {
    let during: Promise<unknown> | undefined;
    const swap = handle.reopenAround(async () => {
      during = handle.execute("SELECT x FROM t").then((result) => result.rows.map((r) => r[0]));
      throw new Error("the rename failed");
    });
    expect(await swap.then(() => "swapped", (error: Error) => error.message)).toBe("the rename failed");
    expect(await during).toEqual(["old"]);
    expect((await handle.execute("SELECT count(*) FROM t")).rows[0]![0]).toBe(1);
  } finally {
    await handle.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("the descriptor a backup reads pages through stays open until the backup ends, even if the handle closes first", async () => {
  const dir = await makeTempDir();
  const db = new DatabaseHandle(join(dir, "data.db"));
  try {
    await db.open();
    const isOpen = (fd: number) => {
      try {
        fstatSync(fd);
        return true;
      } catch {
        return false;
      }
    };
    let seen: number | undefined;
    const { promise: backupDone, resolve: endBackup } = Promise.withResolvers<void>();
    const backup = db.withPagesFd(async (fd) => {
      seen = fd;
      await backupDone;
    });
    expect(seen).toBeDefined();
    expect(fstatSync(seen!).ino).toBe(statSync(db.path).ino);
    await db.close(); // a server stopping while the backup runs
    expect(isOpen(seen!)).toBe(true); // its number cannot go to another file while the backup reads through it
    endBackup();
    await backup;
    expect(isOpen(seen!)).toBe(false);
    // Closed, the handle has none to give.
    expect(await db.withPagesFd(async (fd) => fd)).toBeUndefined();
    // Without a backup using it, closing the handle closes it at once.
    await db.open();
    const fd = (await db.withPagesFd(async (fd) => fd))!;
    expect(isOpen(fd)).toBe(true);
    await db.close();
    expect(isOpen(fd)).toBe(false);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
