import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import Database from "libsql";
import { concatBytes } from "../../src/archive/engine/index.ts";
import { snapshotDatabase } from "../../src/db/snapshot-database.ts";
import { makeTempDir } from "../support/test-server.ts";

let dir: string;
/** Descriptors the tests keep open to read pages through, as the server does with `data.db`'s; closed last. */
const fds: number[] = [];
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await rm(dir, { recursive: true, force: true });
});

/** A snapshot of `path`, its pages read through a descriptor of the file as the server passes one. */
function snapshotOf(path: string) {
  const pagesFd = openSync(path, "r");
  fds.push(pagesFd);
  return snapshotDatabase(path, { pagesFd });
}

/**
 * A WAL database of `rows` rows with text and blobs (NUL bytes and bytes that are not UTF-8 included, which a
 * text conversion would change), in the given encoding and page size.
 */
function makeDatabase(name: string, options: { encoding: string; pageSize: number; rows: number; journal?: string }): string {
  const path = join(dir, name);
  const db = new Database(path);
  db.exec(`PRAGMA encoding = '${options.encoding}'`);
  db.exec(`PRAGMA page_size = ${options.pageSize}`);
  db.exec(`PRAGMA journal_mode = ${options.journal ?? "WAL"}`);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, title TEXT, data BLOB)");
  db.exec("CREATE INDEX t_title ON t (title)");
  const insert = db.prepare("INSERT INTO t (title, data) VALUES (?, ?)");
  db.exec("BEGIN");
  for (let i = 0; i < options.rows; i++) {
    const blob = new Uint8Array(300).map((_, k) => (i * 31 + k * 7) & 0xff); // every byte value, 0 and 0x80–0xff included
    insert.run(`título ${i} ${"é".repeat(i % 13)}`, blob);
  }
  db.exec("COMMIT");
  db.close();
  return path;
}

function checkpoint(path: string) {
  const db = new Database(path);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concatBytes(chunks);
}

describe("a snapshot is the database's pages, byte for byte", () => {
  // 3000 rows of about 330 bytes make about 300 pages of 4 KiB: more than one batch of 256.
  for (const [encoding, pageSize, rows] of [
    ["UTF-8", 4096, 3000],
    ["UTF-16le", 4096, 3000],
    ["UTF-8", 512, 1000],
  ] as const) {
    test(`${encoding}, ${pageSize}-byte pages, with part of it still in the WAL`, async () => {
      const path = makeDatabase(`${encoding}-${pageSize}.db`, { encoding, pageSize, rows });
      const snapshot = await snapshotOf(path); // taken while the WAL still holds the rows
      expect(snapshot.pagesFrom).toBe("file"); // those in the WAL through SQLite
      const image = await readAll(snapshot.stream);
      checkpoint(path);
      const file = new Uint8Array(await readFile(path));
      expect(snapshot.size).toBe(file.length);
      expect(snapshot.size / pageSize).toBeGreaterThan(256);
      expect(Bun.hash.crc32(image)).toBe(Bun.hash.crc32(file));
      expect(Buffer.compare(image, file)).toBe(0);
    });
  }

  test("a few pages changed in the WAL are read through SQLite and the rest from the file, in a rollback-journal database too", async () => {
    const path = makeDatabase("scattered.db", { encoding: "UTF-8", pageSize: 4096, rows: 6000 });
    checkpoint(path);
    const db = new Database(path);
    // A page here and there in the WAL, none among the first: a file read that missed them would go unnoticed
    // by the check of the first batch.
    db.exec("UPDATE t SET title = 'changed ' || id WHERE id % 500 = 0 AND id > 3000");
    db.close();
    const snapshot = await snapshotOf(path);
    expect(snapshot.pagesFrom).toBe("file");
    const image = await readAll(snapshot.stream);
    checkpoint(path);
    expect(Buffer.compare(image, new Uint8Array(await readFile(path)))).toBe(0);

    const rollbackPath = makeDatabase("rollback.db", { encoding: "UTF-8", pageSize: 4096, rows: 3000, journal: "DELETE" });
    const rollbackSnapshot = await snapshotOf(rollbackPath);
    expect(rollbackSnapshot.pagesFrom).toBe("file");
    const rollback = await readAll(rollbackSnapshot.stream);
    expect(Buffer.compare(rollback, new Uint8Array(await readFile(rollbackPath)))).toBe(0);
  });

  test("a WAL restarted while it streams (its old frames left behind, new ones over them) changes nothing in it", async () => {
    const path = makeDatabase("restarted.db", { encoding: "UTF-8", pageSize: 4096, rows: 6000 });
    checkpoint(path);
    const writer = new Database(path);
    // Frames in the WAL, all copied to the file but the WAL not truncated: what an app's automatic checkpoints leave.
    writer.exec("UPDATE t SET title = title || ' once'");
    writer.exec("PRAGMA wal_checkpoint(PASSIVE)");
    const before = new Uint8Array(await readFile(path));
    const snapshot = await snapshotOf(path);
    expect(snapshot.pagesFrom).toBe("file");
    const reader = snapshot.stream.getReader();
    const chunks = [(await reader.read()).value!];
    // The next write starts the WAL over, with new salts, on top of the old frames; a checkpoint tries to copy.
    writer.exec("UPDATE t SET title = title || ' twice', data = zeroblob(350)");
    writer.exec("PRAGMA wal_checkpoint(PASSIVE)");
    for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value);
    writer.close();
    expect(Buffer.compare(concatBytes(chunks), before)).toBe(0);
  });

  test("without a descriptor of the file, or with one of another file, every page is read through SQLite", async () => {
    const path = makeDatabase("no-fd.db", { encoding: "UTF-8", pageSize: 4096, rows: 3000 });
    const plain = await snapshotDatabase(path);
    expect(plain.pagesFrom).toBe("sqlite");
    const image = await readAll(plain.stream);
    const other = makeDatabase("other.db", { encoding: "UTF-8", pageSize: 4096, rows: 3000 });
    const otherFd = openSync(other, "r");
    fds.push(otherFd);
    const mismatched = await snapshotDatabase(path, { pagesFd: otherFd });
    expect(mismatched.pagesFrom).toBe("sqlite");
    expect(Buffer.compare(await readAll(mismatched.stream), image)).toBe(0);
    checkpoint(path);
    expect(Buffer.compare(image, new Uint8Array(await readFile(path)))).toBe(0);
  });

  test("writes committed while it streams are not in it", async () => {
    const path = makeDatabase("moving.db", { encoding: "UTF-8", pageSize: 4096, rows: 6000 });
    checkpoint(path);
    const before = new Uint8Array(await readFile(path));
    const snapshot = await snapshotOf(path);
    const reader = snapshot.stream.getReader();
    const first = await reader.read();
    // Rows changed all over the table, in pages of the batches still to come, and checkpointed as far as may be.
    const writer = new Database(path);
    writer.exec("UPDATE t SET title = title || ' changed', data = zeroblob(400)");
    writer.exec("INSERT INTO t (title, data) SELECT 'new ' || id, data FROM t");
    writer.exec("PRAGMA wal_checkpoint(PASSIVE)");
    writer.close();
    const chunks = [first.value!];
    for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value);
    const image = concatBytes(chunks);
    expect(image.length).toBe(before.length);
    expect(Buffer.compare(image, before)).toBe(0);
    checkpoint(path);
    expect((await readFile(path)).length).toBeGreaterThan(before.length); // the writes did land, after it
  });
});
