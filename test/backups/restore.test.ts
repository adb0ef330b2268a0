import { afterEach, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { cp, mkdir, readdir, readFile, rm, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { MANIFEST_PATH } from "../../src/archive/index.ts";
import { INTERNAL_ROOT_ENTRIES } from "../../src/fs/data-dir.ts";
import { sha256Hex, unzipAll, zipAll } from "../support/archives.ts";
import { hashTree, readPosts, seedDataDir } from "../support/data-dir.ts";
import { isalRequired } from "../support/isal.ts";
import { makePocketBaseZip } from "../support/pb-style-zip.ts";
import { call, logLineField, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    await server.close();
    await rm(server.dir, { recursive: true, force: true });
  }
});

async function seededServer(options: { rows?: number; tag?: string; env?: Record<string, string> } = {}) {
  const dir = await makeTempDir();
  await seedDataDir(dir, options);
  const server = await startTestServer({ dir, ...(options.env ? { env: options.env } : {}) });
  servers.push(server);
  return server;
}

/** The user-visible state of a data directory: the rows, and every file but the server's own bookkeeping. */
async function snapshotState(dir: string) {
  const skip = (rel: string) => rel === "backups" || INTERNAL_ROOT_ENTRIES.has(rel) || rel.startsWith(".pb_") || rel.endsWith("-wal") || rel.endsWith("-shm") || rel === "data.db";
  return { posts: await readPosts(join(dir, "data.db")), files: await hashTree(dir, skip) };
}

/** Live files worth comparing: not the backups, the server's bookkeeping or SQLite's shared-memory index (rewritten by any reader). */
const liveFilter = (rel: string) => rel === "backups" || INTERNAL_ROOT_ENTRIES.has(rel) || rel.startsWith(".pb_") || rel.endsWith("-shm");

/** Waits until the restore's job has finished, and returns it. */
async function restoreOutcome(server: TestServer) {
  return waitFor(() => !server.ctx.backups.busy && server.ctx.jobs.last?.kind === "restore" && server.ctx.jobs.last, "the restore to finish");
}

/** Changes the data after a backup: new rows, deleted rows, changed and deleted files. */
async function mutate(dir: string) {
  const db = createClient({ url: `file:${join(dir, "data.db")}` });
  await db.execute("DELETE FROM posts WHERE id % 3 = 0");
  await db.execute("INSERT INTO posts (title, body) VALUES ('after backup', 'x')");
  db.close();
  await writeFile(join(dir, "storage", "col0", "rec0", "file0.txt"), "changed");
  await unlink(join(dir, "storage", "photo.jpg"));
  await mkdir(join(dir, "storage", "new"), { recursive: true });
  await writeFile(join(dir, "storage", "new", "later.txt"), "added after the backup");
}

/**
 * Changes the live data, restores `key`, which must fail, and checks that the live rows and files are as they
 * were and no staging folder is left. Returns the failed job.
 */
async function refusedRestore(server: TestServer, key: string) {
  await mutate(server.dir);
  const live = await hashTree(server.dir, liveFilter);
  const posts = await readPosts(join(server.dir, "data.db"));
  await server.pb.backups.restore(key);
  const job = await restoreOutcome(server);
  expect(job.phase).toBe("failed");
  expect(await readPosts(join(server.dir, "data.db"))).toEqual(posts);
  expect(await hashTree(server.dir, liveFilter)).toEqual(live);
  expect(await Bun.file(join(server.dir, ".pb_restore_staging")).exists()).toBe(false);
  return job;
}

describe("restore", () => {
  test("round trip: the data comes back byte for byte; old tokens stop working", async () => {
    const server = await seededServer();
    const before = await snapshotState(server.dir);
    await server.pb.backups.create("round.zip");
    await mutate(server.dir);
    expect(await snapshotState(server.dir)).not.toEqual(before);

    const oldToken = server.pb.authStore.token;
    await server.pb.backups.restore("round.zip");
    // 204 at once, then the job holds the lock: canBackup is false while it runs
    const job = await restoreOutcome(server);
    expect(job.error).toBeNull();
    expect(job.phase).toBe("done");
    expect(await snapshotState(server.dir)).toEqual(before);
    // as many files came back as were replaced: nothing to warn about
    expect(server.logs.some((line) => line.includes("removes more files"))).toBe(false);
    // the replaced data is kept until the next start
    expect(execFileSync("ls", [join(server.dir, ".pb_temp_to_delete")]).toString()).toMatch(/^restore_/);
    // superusers come from the backup and the signing secret rotated: the old token is refused
    expect((await call(`${server.url}/api/backups`, { token: oldToken })).status).toBe(401);
    // the server keeps serving, with the restored database open
    await server.pb.collection("_superusers").authWithPassword("admin@example.com", "correct-horse-battery");
    expect((await server.pb.backups.getFullList()).map((b) => b.key)).toContain("round.zip");
    expect((await call(`${server.url}/api/health`, { token: server.pb.authStore.token })).body).toEqual({ code: 200, message: "API is healthy.", data: { canBackup: true } });
  });

  test("uploads the live data still holds unchanged are copied, the rest extracted: all end as in the backup", async () => {
    const server = await seededServer();
    const before = await snapshotState(server.dir);
    await server.pb.backups.create("uploads.zip");
    // mutate: file0 rewritten (another size), photo.jpg deleted, a new file added
    await mutate(server.dir);
    const storage = join(server.dir, "storage");
    // same size, other bytes: only the checksum tells it apart
    const file1 = join(storage, "col1", "rec1", "file1.txt");
    await writeFile(file1, "x".repeat((await readFile(file1)).length));
    // a link to a file outside the data directory, with the very bytes the backup holds: not followed
    const outside = await makeTempDir();
    try {
      await cp(join(storage, "col0", "rec2", "file2.txt"), join(outside, "file2.txt"));
      await rm(join(storage, "col0", "rec2", "file2.txt"));
      await symlink(join(outside, "file2.txt"), join(storage, "col0", "rec2", "file2.txt"));

      await server.pb.backups.restore("uploads.zip");
      const job = await restoreOutcome(server);
      expect(job.error).toBeNull();
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
    expect(await snapshotState(server.dir)).toEqual(before);
    // file3 and file4 were copied; file0, file1, file2 and photo.jpg extracted
    const line = server.logs.findLast((l) => l.includes("backup restored"));
    expect(line).toContain(`"copiedFromLive":2`);
    // The extracted entries inflated on the inflate workers, with ISA-L where it is installed (as in CI).
    expect(line).toContain(isalRequired ? `"inflater":"isa-l"` : `"inflater":"`);
    // the copies are files of their own: the replaced data in the trash is another inode
    const [trash] = await readdir(join(server.dir, ".pb_temp_to_delete"));
    const [restored, replaced] = await Promise.all([
      stat(join(storage, "col1", "rec3", "file3.txt")),
      stat(join(server.dir, ".pb_temp_to_delete", trash!, "storage", "col1", "rec3", "file3.txt")),
    ]);
    expect(restored.ino).not.toBe(replaced.ino);
    expect(restored.nlink).toBe(1);
  });

  test("requests that arrive while the database file is swapped wait for it, not fail with a 500", async () => {
    const server = await seededServer();
    await server.pb.backups.create("swap.zip");
    const token = server.pb.authStore.token;
    // Authenticated health checks read the superuser from data.db. One is sent the moment the swap starts (the
    // job turns to "swapping" just before the database closes), so it arrives while the file is being replaced.
    const health = () => call(`${server.url}/api/health`, { token }).then((response) => response.status);
    const duringSwap: Promise<number>[] = [];
    const unsubscribe = server.ctx.jobs.subscribe((job) => {
      if (job.kind === "restore" && job.phase === "swapping") duringSwap.push(health());
    });
    // And others one after another through the whole restore, as a busy client would send them.
    const statuses = new Set<number>();
    let polling = true;
    const poller = (async () => {
      while (polling) statuses.add(await health());
    })();
    try {
      await server.pb.backups.restore("swap.zip");
      const job = await restoreOutcome(server);
      expect(job.error).toBeNull();
    } finally {
      polling = false;
      unsubscribe();
      await poller;
    }
    expect(duringSwap.length).toBe(1);
    expect(await duringSwap[0]).toBe(200);
    // 200 before, during and after the swap (afterwards the rotated secret refuses the old token: still a 200).
    expect([...statuses]).toEqual([200]);
  });

  test("a backup made by another backstream server, uploaded and restored", async () => {
    const source = await seededServer({ tag: "other" });
    await source.pb.backups.create("moving.zip");
    const expected = await snapshotState(source.dir);
    const bytes = await readFile(join(source.dir, "backups", "moving.zip"));

    const target = await seededServer({ tag: "mine", rows: 10 });
    await target.pb.backups.upload({ file: new File([bytes], "moving.zip") });
    await target.pb.backups.restore("moving.zip");
    expect((await restoreOutcome(target)).error).toBeNull();
    expect(await snapshotState(target.dir)).toEqual(expected);
  });

  test("a PocketBase-style zip (no manifest), uploaded and restored", async () => {
    const source = await makeTempDir();
    try {
      await seedDataDir(source, { tag: "pocketbase" });
      const expected = await snapshotState(source);
      const zip = join(source, "..", `${Date.now()}-pb.zip`);
      const madeBy = await makePocketBaseZip(source, zip);
      if (madeBy !== "pb-style-zip") console.log("note: no ../shared/peers/pb-style-zip here; a zip.js stand-in made the PocketBase-style zip");
      const target = await seededServer({ tag: "mine", rows: 10 });
      await target.pb.backups.upload({ file: new File([await readFile(zip)], "pb_backup.zip") });
      await rm(zip);
      await target.pb.backups.restore("pb_backup.zip");
      expect((await restoreOutcome(target)).error).toBeNull();
      expect(await snapshotState(target.dir)).toEqual(expected);
    } finally {
      await rm(source, { recursive: true, force: true });
    }
  });

  test("a PocketBase zip holding less than the live data is restored as PocketBase would, and the log names it", async () => {
    const server = await seededServer({ rows: 10 });
    const liveCount = Object.keys(await hashTree(server.dir, (rel) => liveFilter(rel) || rel === ".pb_temp_to_delete" || rel.endsWith("-wal"))).length;
    expect(liveCount).toBeGreaterThan(2);
    const zip = await zipAll(new Map([["data.db", new Uint8Array(await readFile(join(server.dir, "data.db")))]]));
    await server.pb.backups.upload({ file: new File([zip as BlobPart], "db_only.zip") });
    await server.pb.backups.restore("db_only.zip");
    expect((await restoreOutcome(server)).error).toBeNull();
    const warning = server.logs.find((line) => line.includes("this restore removes more files than it brings"));
    expect(warning).toBeDefined();
    expect(logLineField(warning!, "liveFiles")).toBe(String(liveCount));
    expect(logLineField(warning!, "restoredFiles")).toBe("1");
  });

  test("an archive corrupted halfway through an entry is refused; the live data is untouched", async () => {
    const server = await seededServer({ rows: 2000 });
    await server.pb.backups.create("good.zip");
    const archive = await readFile(join(server.dir, "backups", "good.zip"));
    // flip a byte in the middle of the first entry's data (data.db, compressed)
    const at = Math.floor(archive.length / 4);
    archive[at] = archive[at]! ^ 0xff;
    await writeFile(join(server.dir, "backups", "corrupt.zip"), archive);

    const job = await refusedRestore(server, "corrupt.zip");
    expect(job.error).toMatch(/corrupt|CRC|checksum/);
    expect(job.error).not.toContain(server.dir);
    expect(server.logs.some((line) => line.includes("restore failed; the current data is unchanged"))).toBe(true);
    // the server still works with its old data and old token
    expect((await server.pb.backups.getFullList()).length).toBe(2);
  });

  test("a data.db that fails quick_check, with every checksum right, is refused; the live data is untouched", async () => {
    const server = await seededServer({ rows: 2000 });
    await server.pb.backups.create("good.zip");
    const entries = await unzipAll(new Uint8Array(await readFile(join(server.dir, "backups", "good.zip"))));
    const db = entries.get("data.db")!.slice();
    expect(db.length).toBeGreaterThan(8192);
    db.fill(0x41, 4096, 8192); // the second page: the header still says SQLite
    entries.set("data.db", db);
    const manifest = JSON.parse(new TextDecoder().decode(entries.get(MANIFEST_PATH)!));
    manifest.entries.find((e: { path: string }) => e.path === "data.db").sha256 = sha256Hex(db);
    entries.delete(MANIFEST_PATH);
    entries.set(MANIFEST_PATH, new TextEncoder().encode(JSON.stringify(manifest)));
    await writeFile(join(server.dir, "backups", "bad-db.zip"), await zipAll(entries));

    const job = await refusedRestore(server, "bad-db.zip");
    expect(job.error).toStartWith("The restored data.db fails its integrity check");
  });

  test("a disk without room for the backup and the app's reserve refuses the restore before extracting", async () => {
    // A reserve of a petabyte: no disk here has room for it, so any backup is refused.
    const server = await seededServer({ env: { BACKSTREAM_RESTORE_RESERVE_MB: String(1024 ** 3) } });
    await server.pb.backups.create("fits-nowhere.zip");
    const job = await refusedRestore(server, "fits-nowhere.zip");
    expect(job.error).toStartWith("Not enough free disk space to restore this backup: it needs ");
    expect(job.error).toContain(`and ${1024 ** 3} MB are kept free for the app`);
  });

  test("restore while another job runs is refused with the busy message", async () => {
    const server = await seededServer();
    await server.pb.backups.create("a.zip");
    await server.pb.backups.restore("a.zip");
    const second = await call(`${server.url}/api/backups/a.zip/restore`, { method: "POST", token: server.pb.authStore.token });
    expect(second.body).toEqual({ data: {}, message: "Try again later - another backup/restore process has already been started.", status: 400 });
    const del = await call(`${server.url}/api/backups/a.zip`, { method: "DELETE", token: server.pb.authStore.token });
    expect(del.body).toEqual({ data: {}, message: "The backup is currently being used and cannot be deleted.", status: 400 });
    await restoreOutcome(server);
  });
});
