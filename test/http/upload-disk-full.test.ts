import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { craftZip, tinyDatabase } from "../support/craft-zip.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { call, makeTempDir, startTestServer, type TestServer } from "../support/test-server.ts";
import { fillPages, mountTmpfs, PAGE, skipWithoutTmpfs, unmountTmpfs } from "../support/tmpfs.ts";

// A real full disk (`../support/tmpfs.ts`): the backups folder is a small tmpfs, so ENOSPC comes from the kernel
// while the upload streams into its pending file, while the pending file is created, or while the checksum sidecar
// is written at commit.

const TMPFS_BYTES = 1024 * 1024;
const TMPFS_INODES = 64;

let server: TestServer;
let dir: string;
let backups: string;
let small: Uint8Array;
let big: Uint8Array;

describe.skipIf(skipWithoutTmpfs("upload-disk-full.test.ts"))("an upload that fills the disk", () => {
  beforeAll(async () => {
    dir = await makeTempDir();
    await seedDataDir(dir, { rows: 20, files: 2 });
    backups = join(dir, "backups");
    await mkdir(backups);
    if (!mountTmpfs(backups, { bytes: TMPFS_BYTES, inodes: TMPFS_INODES })) throw new Error("the tmpfs could not be mounted");
    server = await startTestServer({ dir });
    const db = await tinyDatabase();
    small = craftZip([{ name: "data.db", data: db }]);
    // Incompressible and stored: three times what the disk holds.
    big = craftZip([{ name: "data.db", data: db }, { name: "storage/noise.bin", data: randomBytes(3 * TMPFS_BYTES) }]);
  });
  afterAll(async () => {
    await server?.close();
    unmountTmpfs(backups);
    await rm(dir, { recursive: true, force: true });
  });

  const diskFull = { data: {}, message: "Failed to store the backup: the disk is full (ENOSPC).", status: 400 };

  async function upload(bytes: Uint8Array, filename: string) {
    const form = new FormData();
    form.append("file", new File([bytes as BlobPart], filename));
    return call(`${server.url}/api/backups/upload`, { method: "POST", token: server.pb.authStore.token, body: form });
  }

  /** Everything in the backups folder, hidden folders' contents included. */
  async function folder(): Promise<string[]> {
    const names: string[] = [];
    for (const name of await readdir(backups)) {
      names.push(name);
      const inside = name.startsWith(".") ? await readdir(join(backups, name)).catch(() => [] as string[]) : [];
      for (const inner of inside) names.push(`${name}/${inner}`);
    }
    return names.sort();
  }

  /** Fills the tmpfs's inodes with empty files, leaving `spare` free; returns the fillers. */
  async function fillInodes(spare: number): Promise<string[]> {
    const fill = join(backups, ".fill");
    await mkdir(fill, { recursive: true });
    const made: string[] = [];
    for (;;) {
      const path = join(fill, `f${made.length}`);
      try {
        await writeFile(path, "");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
        break;
      }
      made.push(path);
    }
    for (const path of made.splice(made.length - spare)) await rm(path);
    return made;
  }
  const freeInodes = () => rm(join(backups, ".fill"), { recursive: true, force: true });

  let freePages = async () => {};
  const fillBackupPages = async (sparePages: number) => {
    freePages = await fillPages(backups, sparePages);
  };

  /** The answer says what happened and names no path; nothing is stored, nothing half-written is left. */
  async function expectNothingStored(res: { status: number; body: unknown }, before: string[]) {
    expect(res.body).toEqual(diskFull);
    expect(JSON.stringify(res.body)).not.toContain(dir);
    expect(await folder()).toEqual(before);
    expect(await server.pb.backups.getFullList()).toEqual([]);
  }

  /** How far the failed upload of `key` got, by its job record (bytes received, then checked). */
  function receivedBytes(key: string): number {
    const job = server.ctx.jobs.recent.find((j) => j.kind === "upload" && j.key === key)!;
    expect(job.error).toBe(diskFull.message);
    return job.bytesDone;
  }

  /** Once space is freed, an upload and a backup both work. */
  async function expectWorksAgain() {
    const again = await upload(small, "after.zip");
    expect(again.status).toBe(204);
    await server.pb.backups.create("after-create.zip");
    expect((await server.pb.backups.getFullList()).map((b) => b.key).sort()).toEqual(["after-create.zip", "after.zip"]);
    await server.pb.backups.delete("after.zip");
    await server.pb.backups.delete("after-create.zip");
    expect(await server.pb.backups.getFullList()).toEqual([]);
  }

  test("while the body streams into the pending file: 400 naming the cause, no temp file, nothing listed", async () => {
    // The store's folders exist from a first upload, so that what the full disk refuses is the upload itself.
    expect((await upload(small, "first.zip")).status).toBe(204);
    await server.pb.backups.delete("first.zip");
    const before = await folder();
    const res = await upload(big, "big.zip");
    await expectNothingStored(res, before);
    // It failed midway: some of the body was taken in, not all of it.
    expect(receivedBytes("big.zip")).toBeGreaterThan(0);
    expect(receivedBytes("big.zip")).toBeLessThan(big.length);
    expect(await readdir(join(backups, ".tmp"))).toEqual([]);
    await expectWorksAgain();
  });

  test("while the pending file is created (no inode left): 400, nothing stored", async () => {
    await fillInodes(0);
    const before = await folder();
    const res = await upload(small, "no-inode.zip");
    await expectNothingStored(res, before);
    expect(receivedBytes("no-inode.zip")).toBe(0);
    await freeInodes();
    await expectWorksAgain();
  });

  test("while committing (the checksum sidecar finds no inode): 400, no sidecar, no temp file, nothing listed", async () => {
    // One inode left: the pending file takes it, and the sidecar written at commit finds none.
    await fillInodes(1);
    const before = await folder();
    const res = await upload(small, "at-commit.zip");
    await expectNothingStored(res, before);
    // The whole body was taken in and checked: what failed was the commit.
    expect(receivedBytes("at-commit.zip")).toBeGreaterThanOrEqual(small.length);
    expect(await readdir(join(backups, ".meta"))).toEqual([]);
    await freeInodes();
    await expectWorksAgain();
  });

  test("while committing (the sidecar's bytes find no room): 400, its temp file removed, nothing listed", async () => {
    // Room for the pending file's pages and not one more: the sidecar's temp file is made, its bytes do not fit.
    await fillBackupPages(Math.ceil(small.length / PAGE));
    const before = await folder();
    const res = await upload(small, "no-room.zip");
    await expectNothingStored(res, before);
    expect(receivedBytes("no-room.zip")).toBeGreaterThanOrEqual(small.length);
    expect(await readdir(join(backups, ".meta"))).toEqual([]);
    await freePages();
    await expectWorksAgain();
  });
});

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(length, at + 65536)));
  return bytes;
}
