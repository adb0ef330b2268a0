import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "libsql";
import { walPages } from "../../src/db/wal-pages.ts";
import { makeTempDir } from "../support/test-server.ts";

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function makeDatabase(name: string): { path: string; db: InstanceType<typeof Database> } {
  const path = join(dir, name);
  const db = new Database(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA wal_autocheckpoint = 0"); // the test decides when the WAL is copied back
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)");
  db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) INSERT INTO t (body) SELECT printf('%.300c', 'x') FROM n");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  return { path, db };
}

/** The pages whose current bytes (as SQLite reads them, WAL included) differ from the database file's. */
async function pagesNotInFile(path: string, db: InstanceType<typeof Database>): Promise<number[]> {
  const file = new Uint8Array(await readFile(path));
  const pageCount = Number((db.prepare("PRAGMA page_count").raw().get() as [number])[0]);
  const page = db.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?").raw();
  const differ: number[] = [];
  for (let pgno = 1; pgno <= pageCount; pgno++) {
    const current = (page.get(pgno) as [Uint8Array])[0];
    if (!Buffer.from(current).equals(file.subarray((pgno - 1) * 4096, pgno * 4096))) differ.push(pgno);
  }
  return differ;
}

describe("the pages a WAL holds", () => {
  test("every page whose bytes the file does not hold is listed, and few others", async () => {
    const { path, db } = makeDatabase("changed.db");
    expect(await walPages(`${path}-wal`, 4096)).toEqual(new Set()); // truncated: nothing in it
    db.exec("UPDATE t SET body = 'changed' WHERE id % 400 = 0");
    db.exec("INSERT INTO t (body) VALUES ('new')"); // the table grows: a page past the file's end
    const listed = (await walPages(`${path}-wal`, 4096))!;
    const differ = await pagesNotInFile(path, db);
    expect(differ.length).toBeGreaterThan(5);
    for (const pgno of differ) expect(listed.has(pgno)).toBe(true);
    expect(listed.size).toBeLessThanOrEqual(differ.length + 2);
    db.close();
  });

  test("frames left from before the WAL restarted are not listed; the ones written over them are", async () => {
    const { path, db } = makeDatabase("restarted.db");
    db.exec("UPDATE t SET body = 'first' WHERE id > 3000"); // the last pages of the table
    db.exec("PRAGMA wal_checkpoint(PASSIVE)"); // copied to the file, the WAL left as it is
    const before = (await walPages(`${path}-wal`, 4096))!;
    expect(before.size).toBeGreaterThan(10);
    db.exec("UPDATE t SET body = 'second' WHERE id = 1"); // restarts the WAL: one page and its frames, over the old ones
    const after = (await walPages(`${path}-wal`, 4096))!;
    expect(after.size).toBeLessThanOrEqual(2);
    for (const pgno of await pagesNotInFile(path, db)) expect(after.has(pgno)).toBe(true);
    db.close();
  });

  test("no file is an empty WAL; a file that is not a WAL of this page size is not read at all", async () => {
    expect(await walPages(join(dir, "none.db-wal"), 4096)).toEqual(new Set());
    const { path, db } = makeDatabase("sizes.db");
    db.exec("UPDATE t SET body = 'x' WHERE id = 5");
    expect(await walPages(`${path}-wal`, 8192)).toBeUndefined();
    db.close();
    await writeFile(join(dir, "garbage.db-wal"), new Uint8Array(5000).fill(7));
    expect(await walPages(join(dir, "garbage.db-wal"), 4096)).toBeUndefined();
  });
});
