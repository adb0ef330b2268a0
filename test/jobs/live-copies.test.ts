import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LiveCopies } from "../../src/jobs/live-copies.ts";
import { tempDirsRemovedAfterEach } from "../support/temp-dirs.ts";

const tempDir = tempDirsRemovedAfterEach();

/** A data directory `live/` with uploads, and an empty staging folder beside it. */
async function setup() {
  const root = await tempDir();
  const live = join(root, "live");
  const staging = join(root, "staging");
  await mkdir(join(live, "storage", "col"), { recursive: true });
  await mkdir(staging);
  return { root, live, staging };
}

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** Copies like a restore would, closing the handle it gets; whether a copy was made. */
async function copy(copies: LiveCopies, staging: string, path: string, size: number, hash: string): Promise<boolean> {
  const handle = await copies.copy(path, join(staging, path), size, hash);
  await handle?.close();
  return handle !== undefined;
}

describe("LiveCopies", () => {
  test("an upload with the entry's bytes is copied: a file of its own, with those bytes", async () => {
    const { live, staging } = await setup();
    // larger than one read, so the copy is hashed in several pieces
    const bytes = crypto.getRandomValues(new Uint8Array(2.5 * 1024 * 1024));
    await writeFile(join(live, "storage", "col", "a.bin"), bytes);
    expect(await copy(new LiveCopies(live), staging, "storage/col/a.bin", bytes.length, sha256(bytes))).toBe(true);
    const copied = join(staging, "storage", "col", "a.bin");
    expect(sha256(await readFile(copied))).toBe(sha256(bytes));
    // not a hard link: the replaced data moved to the trash must not change with the restored file
    const [source, target] = await Promise.all([stat(join(live, "storage", "col", "a.bin")), stat(copied)]);
    expect(target.ino).not.toBe(source.ino);
    expect(target.nlink).toBe(1);
  });

  test("a small upload (the synchronous path) is copied as a large one is: a file of its own, with its bytes", async () => {
    const { live, staging } = await setup();
    const bytes = crypto.getRandomValues(new Uint8Array(9_000));
    await writeFile(join(live, "storage", "col", "avatar.png"), bytes);
    const copies = new LiveCopies(live);
    expect(await copies.mayHold("storage/col/avatar.png", bytes.length)).toBe(true);
    expect(await copy(copies, staging, "storage/col/avatar.png", bytes.length, sha256(bytes))).toBe(true);
    const copied = join(staging, "storage", "col", "avatar.png");
    expect(sha256(await readFile(copied))).toBe(sha256(bytes));
    expect((await stat(copied)).ino).not.toBe((await stat(join(live, "storage", "col", "avatar.png"))).ino);
  });

  test("an upload of the same size but other bytes is not copied, and leaves nothing staged", async () => {
    const { live, staging } = await setup();
    await writeFile(join(live, "storage", "col", "a.txt"), "live bytes");
    expect(await copy(new LiveCopies(live), staging, "storage/col/a.txt", 10, sha256("backup!!!!"))).toBe(false);
    expect(await Bun.file(join(staging, "storage", "col", "a.txt")).exists()).toBe(false);
  });

  test("an upload of another size, or none, is not copied", async () => {
    const { live, staging } = await setup();
    await writeFile(join(live, "storage", "col", "a.txt"), "live");
    const copies = new LiveCopies(live);
    expect(await copy(copies, staging, "storage/col/a.txt", 5, sha256("live!"))).toBe(false);
    expect(await copy(copies, staging, "storage/col/missing.txt", 4, sha256("live"))).toBe(false);
    expect(await readdir(staging)).toEqual([]);
  });

  test("only uploads: a database or another root file with the entry's bytes is extracted as usual", async () => {
    const { live, staging } = await setup();
    await writeFile(join(live, "data.db"), "same");
    await writeFile(join(live, "notes.txt"), "same");
    const copies = new LiveCopies(live);
    expect(await copy(copies, staging, "data.db", 4, sha256("same"))).toBe(false);
    expect(await copy(copies, staging, "notes.txt", 4, sha256("same"))).toBe(false);
  });

  test("a symbolic link out of storage/ is not followed, even to the entry's bytes", async () => {
    const { root, live, staging } = await setup();
    await writeFile(join(root, "outside.txt"), "secret");
    await symlink(join(root, "outside.txt"), join(live, "storage", "col", "link.txt"));
    await symlink(root, join(live, "storage", "up"));
    const copies = new LiveCopies(live);
    expect(await copy(copies, staging, "storage/col/link.txt", 6, sha256("secret"))).toBe(false);
    expect(await copy(copies, staging, "storage/up/outside.txt", 6, sha256("secret"))).toBe(false);
  });

  test("a FIFO where an empty upload was is not opened (it would block)", async () => {
    const { live, staging } = await setup();
    execFileSync("mkfifo", [join(live, "storage", "col", "empty.txt")]);
    expect(await copy(new LiveCopies(live), staging, "storage/col/empty.txt", 0, sha256(""))).toBe(false);
  });

  test("storage/ itself may be a link to another disk: its uploads are copied", async () => {
    const { root, live, staging } = await setup();
    await rm(join(live, "storage"), { recursive: true });
    await mkdir(join(root, "elsewhere", "col"), { recursive: true });
    await writeFile(join(root, "elsewhere", "col", "a.txt"), "upload");
    await symlink(join(root, "elsewhere"), join(live, "storage"));
    expect(await copy(new LiveCopies(live), staging, "storage/col/a.txt", 6, sha256("upload"))).toBe(true);
    expect(await readFile(join(staging, "storage", "col", "a.txt"), "utf8")).toBe("upload");
  });
});
