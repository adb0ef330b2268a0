// A backup and a restore on a data directory whose disk fills up (a real tmpfs, `../support/tmpfs.ts`): each
// fails with the documented error naming the cause, leaves nothing behind, and the next job works.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { INTERNAL_ROOT_ENTRIES } from "../../src/fs/data-dir.ts";
import { hashTree, seedDataDir } from "../support/data-dir.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";
import { fillPages, mountTmpfs, PAGE, skipWithoutTmpfs, unmountTmpfs } from "../support/tmpfs.ts";

const SMALL_FILES = 100;
/** The restore's enough times to catch a failure that shows one time in two (a job worker dying, say). */
const RESTORE_TRIES = 10;
const BIG_FILE_BYTES = 1024 * 1024;

let dir: string;
let server: TestServer;

const isLiveData = (rel: string) => !(rel === "backups" || rel === ".pb_temp_to_delete" || rel === ".filler" || INTERNAL_ROOT_ENTRIES.has(rel) || rel.endsWith("-shm"));
const liveData = () => hashTree(dir, (rel) => !isLiveData(rel));

/** The bytes of the live data's files, as a backup of it counts them. */
async function liveBytes(): Promise<number> {
  let total = 0;
  for (const rel of Object.keys(await liveData())) total += (await stat(join(dir, rel))).size;
  return total;
}

async function lastJob(kind: string) {
  return waitFor(() => !server.ctx.backups.busy && server.ctx.jobs.last?.kind === kind && server.ctx.jobs.last, `the ${kind} job to finish`);
}

describe.skipIf(skipWithoutTmpfs("disk-full.test.ts"))("backups and restores on a disk that fills up", () => {
  beforeAll(async () => {
    dir = await makeTempDir();
    if (!mountTmpfs(dir, { bytes: 16 * 1024 * 1024, inodes: 4096 })) throw new Error("the tmpfs could not be mounted");
    await seedDataDir(dir, { rows: 20, files: 3 });
    // One large upload, and many small ones, each taking a whole 4 KiB page on disk, far more than its size in
    // the archive says. The large one made first, so that tmpfs (newest first) lists it, and archives it, last:
    // the disk fills in the middle of its writes.
    await mkdir(join(dir, "storage", "videos"), { recursive: true });
    await writeFile(join(dir, "storage", "videos", "clip.bin"), crypto.getRandomValues(new Uint8Array(BIG_FILE_BYTES)));
    await mkdir(join(dir, "storage", "thumbs"), { recursive: true });
    for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(dir, "storage", "thumbs", `t${i}.txt`), `thumbnail ${i}\n`);
    // No reserve: the restore's own free-space check passes, and the disk fills while it extracts.
    server = await startTestServer({ dir, env: { BACKSTREAM_RESTORE_RESERVE_MB: "0" } });
  });
  afterAll(async () => {
    await server?.close();
    unmountTmpfs(dir);
    await rm(dir, { recursive: true, force: true });
  });

  test("a backup that fills the disk fails naming the cause, stores nothing, and the next backup works", async () => {
    const backups = join(dir, "backups");
    await mkdir(backups, { recursive: true });
    // Files only: the store's empty working folders may stay.
    const before = await hashTree(backups);
    const freePages = await fillPages(dir, 2);
    try {
      const answer = await call(`${server.url}/api/backups`, { method: "POST", token: server.pb.authStore.token, headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "full.zip" }) });
      // The API answers as PocketBase does; the job record and the log name the cause.
      expect(answer).toMatchObject({ status: 400, body: { data: {}, message: "Failed to create backup.", status: 400 } });
      const job = await lastJob("create");
      expect(job.phase).toBe("failed");
      expect(job.error).toBe("Failed to store the backup: the disk is full (ENOSPC).");
      expect(job.error).not.toContain(dir);
      expect(await hashTree(backups)).toEqual(before);
      expect(await server.pb.backups.getFullList()).toEqual([]);
    } finally {
      await freePages();
    }
    await server.pb.backups.create("kept.zip");
    expect((await server.pb.backups.getFullList()).map((b) => b.key)).toEqual(["kept.zip"]);
  });

  test(`a restore that fills the disk fails with the documented error every time (${RESTORE_TRIES} tries), live data as it was`, async () => {
    // The uploads change after the backup, so that the restore extracts them rather than copying them from the live data.
    for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(dir, "storage", "thumbs", `t${i}.txt`), `changed ${i}\n`);
    await writeFile(join(dir, "storage", "videos", "clip.bin"), crypto.getRandomValues(new Uint8Array(BIG_FILE_BYTES)));
    const live = await liveData();
    // Room for the backup's bytes as its central directory counts them, so its free-space check passes, but not
    // for one 4 KiB page per file: the disk fills while the restore extracts.
    const freePages = await fillPages(dir, Math.ceil(await liveBytes() / PAGE) + 8);
    const failedAt = new Set<string>();
    try {
      for (let attempt = 0; attempt < RESTORE_TRIES; attempt++) {
        const answer = await call(`${server.url}/api/backups/kept.zip/restore`, { method: "POST", token: server.pb.authStore.token });
        expect(answer.status).toBe(204);
        const job = await lastJob("restore");
        expect(job.phase).toBe("failed");
        expect(job.error).toMatch(/^The entry \S+ could not be written: the disk is full \(ENOSPC\)\.$/);
        failedAt.add(job.error!.split(" ")[2]!);
        expect(await liveData()).toEqual(live);
        expect(await readdir(dir)).not.toContain(".pb_restore_staging");
        expect((await call(`${server.url}/api/health`)).status).toBe(200);
      }
    } finally {
      await freePages();
    }
    console.log(`disk-full restore: ${RESTORE_TRIES} tries ran out of room writing ${[...failedAt].join(", ")}`);
    // With room again, the same backup restores.
    await server.pb.backups.restore("kept.zip");
    expect((await lastJob("restore")).phase).toBe("done");
    await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
    expect((await liveData())["storage/thumbs/t0.txt"]).not.toBe(live["storage/thumbs/t0.txt"]);
  });
});
