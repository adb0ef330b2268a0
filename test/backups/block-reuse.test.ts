import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { parseBlockIndex, recordCount } from "../../src/archive/reuse/index.ts";
import { LocalBackupStore } from "../../src/store/local-backup-store.ts";
import { sha256Hex, unzipAll } from "../support/archives.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, loggedField, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";

/** What the server logged for the backup `key`: how many input bytes it deflated and how many it reused. */
function reuseOf(server: TestServer, key: string): { deflated: number; reused: number } {
  const number = (field: string) => Number(loggedField(server, "backup created", key, field));
  return { deflated: number("deflatedBytes"), reused: number("reusedBytes") };
}

/** Adds about `megabytes` of rows, as an app's writes between two backups would. */
async function addRows(dir: string, megabytes: number, tag: string) {
  const db = createClient({ url: `file:${join(dir, "data.db")}` });
  await db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)");
  const body = `${tag} ${"lorem ipsum dolor sit amet ".repeat(36)}`;
  for (let done = 0; done < megabytes; done += 1) {
    await db.batch(Array.from({ length: 1000 }, (_, i) => ({ sql: "INSERT INTO notes (body) VALUES (?)", args: [`${i} ${body}`] })), "write");
  }
  await db.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

let server: TestServer;
const backups = () => join(server.dir, "backups");
const indexes = async () => (await readdir(join(backups(), ".blocks")).catch(() => [] as string[])).sort();

beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir);
  await addRows(dir, 6, "first");
  server = await startTestServer({ dir });
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
});

describe("a backup reuses the blocks of the newest earlier backup", () => {
  test("the second backup of unchanged data deflates only its manifest, and holds the same files", async () => {
    await server.pb.backups.create("first.zip");
    const first = reuseOf(server, "first.zip");
    expect(first.reused).toBe(0);
    expect(first.deflated).toBeGreaterThan(5 * 1024 * 1024); // data.db, the text files, the manifest
    expect(await indexes()).toEqual(["first.zip.json"]);
    // As private as the archive: piece hashes would let a reader confirm guesses at the data.
    expect((await stat(join(backups(), ".blocks", "first.zip.json"))).mode & 0o777).toBe(0o600);
    const index = parseBlockIndex(await readFile(join(backups(), ".blocks", "first.zip.json"), "utf8"));
    expect(recordCount(index!.records)).toBeGreaterThan(5 * 22);

    await server.pb.backups.create("second.zip");
    const second = reuseOf(server, "second.zip");
    expect(second.deflated).toBeLessThan(2000); // the manifest
    // Its pieces were fingerprinted with the first index's key, and its own index keeps that key for the next.
    const secondIndex = parseBlockIndex(await readFile(join(backups(), ".blocks", "second.zip.json"), "utf8"));
    expect(secondIndex!.fingerprintKey).toEqual(index!.fingerprintKey);
    expect(second.reused + second.deflated).toBe(first.deflated);
    const [a, b] = await Promise.all(["first.zip", "second.zip"].map(async (key) => unzipAll(await readFile(join(backups(), key)))));
    for (const [path, bytes] of a!) if (path !== "backstream-manifest.json") expect(sha256Hex(b!.get(path)!)).toBe(sha256Hex(bytes));
    expect(Bun.spawnSync(["unzip", "-tq", join(backups(), "second.zip")]).exitCode).toBe(0);
  });

  test("after the app writes, only the pieces that changed are deflated again", async () => {
    const before = reuseOf(server, "second.zip");
    await addRows(server.dir, 2, "later");
    await server.pb.backups.create("third.zip");
    const third = reuseOf(server, "third.zip");
    // About 2 MB of new rows, and the pages that point to them, are deflated; the rest is reused.
    expect(third.deflated).toBeGreaterThan(2 * 1024 * 1024);
    expect(third.deflated).toBeLessThan(4 * 1024 * 1024);
    expect(third.reused).toBeGreaterThan(before.reused - 2 * 1024 * 1024);
    // The archive holds the database as it is now: the later rows are in it.
    const files = await unzipAll(await readFile(join(backups(), "third.zip")));
    const checkDir = await makeTempDir();
    try {
      await writeFile(join(checkDir, "data.db"), files.get("data.db")!);
      const check = createClient({ url: `file:${join(checkDir, "data.db")}` });
      const rows = await check.execute("SELECT count(*) FROM notes WHERE body LIKE '%later%'");
      check.close();
      expect(Number(rows.rows[0]![0])).toBe(2000);
    } finally {
      await rm(checkDir, { recursive: true, force: true });
    }
  });

  test("deleting a backup deletes its index; the next backup reuses the newest one still there", async () => {
    await server.pb.backups.delete("third.zip");
    expect(await indexes()).toEqual(["first.zip.json", "second.zip.json"]);
    await server.pb.backups.create("fourth.zip");
    // Reused from second.zip: the rows written since are deflated again, the rest comes from it.
    const fourth = reuseOf(server, "fourth.zip");
    expect(fourth.reused).toBeGreaterThan(4 * 1024 * 1024);
    expect(fourth.deflated).toBeGreaterThan(2 * 1024 * 1024);
  });

  test("after a restore, the next backup reuses the restored backup's pieces", async () => {
    const restored = reuseOf(server, "fourth.zip");
    await server.pb.backups.restore("fourth.zip");
    const job = await waitFor(() => !server.ctx.backups.busy && server.ctx.jobs.last?.kind === "restore" && server.ctx.jobs.last, "the restore");
    expect(job.error).toBeNull();
    await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
    await server.pb.backups.create("after-restore.zip");
    const after = reuseOf(server, "after-restore.zip");
    expect(after.deflated).toBeLessThan(2000); // the manifest
    expect(after.reused + after.deflated).toBe(restored.reused + restored.deflated);
    await server.pb.backups.delete("after-restore.zip");
  });

  test("an index that is malformed, or whose archive was replaced behind the store's back, is not used", async () => {
    const store = new LocalBackupStore(backups());
    const key = "fourth.zip";
    // The same key now holds other bytes of the same size (a byte flipped: bit rot, or a hand-made copy), with
    // their own checksum.
    const other = await readFile(join(backups(), key));
    other[Math.floor(other.length / 3)]! ^= 0xff;
    await rm(join(backups(), key));
    const pending = await store.write(key);
    const writer = pending.stream.getWriter();
    await writer.write(other);
    await writer.close();
    await pending.commit(sha256Hex(other));
    expect(await store.blockIndexes.read(key)).toBeDefined(); // the index is still there, for the old bytes
    // The other candidates' indexes are malformed.
    for (const k of ["first.zip", "second.zip"]) await writeFile(join(backups(), ".blocks", `${k}.json`), "{}");
    await server.pb.backups.create("fifth.zip");
    expect(reuseOf(server, "fifth.zip").reused).toBe(0);
    // With nothing reused, its index starts a line of its own, with a new key.
    const keyOf = async (k: string) => parseBlockIndex(await readFile(join(backups(), ".blocks", `${k}.json`), "utf8"))!.fingerprintKey;
    expect(await keyOf("fifth.zip")).not.toEqual(await keyOf("fourth.zip"));
    expect(Bun.spawnSync(["unzip", "-tq", join(backups(), "fifth.zip")]).exitCode).toBe(0);
  });

  test("an uploaded backup gets no index, and cleanup removes indexes whose backup is gone", async () => {
    const bytes = await readFile(join(backups(), "first.zip"));
    await server.pb.backups.upload({ file: new File([bytes], "uploaded.zip", { type: "application/zip" }) });
    expect(await indexes()).not.toContain("uploaded.zip.json");
    await rm(join(backups(), "second.zip")); // gone behind the store's back
    await writeFile(join(backups(), ".blocks", "gone.zip.json.1a2b.tmp"), "{}"); // a write a crash cut short
    await new LocalBackupStore(backups()).cleanup();
    expect(await indexes()).toEqual(["fifth.zip.json", "first.zip.json", "fourth.zip.json"]);
  });
});
