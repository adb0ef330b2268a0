import { createHash } from "node:crypto";
import { closeSync, constants, copyFileSync, mkdirSync, openSync, readSync, realpathSync, rmSync, statSync } from "node:fs";
import { copyFile, mkdir, open, realpath, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { SYNC_WRITE_BYTES, writtenFile, type WrittenFile } from "./file-sink.ts";

/** The only part of the data directory copied from: uploads are written once and rarely change. */
const UPLOADS = "storage";

/** Bytes read back at a time to hash a copy. */
const READ_SIZE = 1024 * 1024;

/**
 * Restored uploads taken from the data directory being replaced instead of from the archive, where a file
 * there at the same path already holds the entry's exact bytes. A restore rolls a server's database back, but
 * most of its uploads are the same files as in the backup: a copy within the disk spares inflating them (and
 * on S3, downloading them).
 *
 * The copy is what gets checked, not the live file: the staged copy, which nothing else writes, must have the
 * manifest's SHA-256. An upload that differs, or that the app changes while it is copied, fails that check and
 * the entry is extracted from the archive as usual. A live path that is not a regular file inside `storage/`
 * (a symbolic link out of it, a FIFO) is never opened.
 *
 * Small uploads are looked up, copied and hashed with synchronous calls, as `fileSink` writes small files (why:
 * `file-sink.ts`): a restore onto 50 000 unchanged uploads made nine round trips through the thread pool a file.
 */
export class LiveCopies {
  readonly #liveDir: string;
  #uploadsRoot: Promise<string | undefined> | undefined;

  constructor(liveDir: string) {
    this.#liveDir = liveDir;
  }

  /** Whether the live data has a regular file at the entry's `path` with its `size`: worth a `copy`. */
  async mayHold(path: string, size: number): Promise<boolean> {
    return (await this.#regularUpload(path, size)) !== undefined;
  }

  /** The uploads folder's real path, looked up once. */
  #root(): Promise<string | undefined> {
    this.#uploadsRoot ??= realpath(join(this.#liveDir, UPLOADS)).catch(() => undefined);
    return this.#uploadsRoot;
  }

  /**
   * Copies the live file at the entry's `path` to `target` when it holds the entry's bytes (`size`, `sha256`)
   * and returns the copy's open handle, for the caller to fsync and close. Otherwise returns undefined and
   * leaves nothing at `target`.
   */
  async copy(path: string, target: string, size: number, sha256: string): Promise<WrittenFile | undefined> {
    // Looked up again, not taken from `mayHold`: seconds may pass between the two, and a path that became a FIFO
    // or a link out of storage/ meanwhile must not be opened (copying from a FIFO would block).
    const source = await this.#regularUpload(path, size);
    if (!source) return undefined;
    if (size <= SYNC_WRITE_BYTES) return copySmall(source, target, size, sha256);
    let handle: FileHandle | undefined;
    try {
      await mkdir(dirname(target), { recursive: true });
      await copyFile(source, target, constants.COPYFILE_EXCL);
      handle = await open(target, "r+");
      if ((await hashOf(handle)) === sha256) return handle;
    } catch {
      // Vanished, unreadable, or no room: extracting the entry instead reports what is really wrong.
    }
    await handle?.close().catch(() => {});
    // The staging folder is fresh and entry paths are unique, so whatever is at `target` is this copy's.
    await rm(target, { force: true });
    return undefined;
  }

  /** The live file's real path, if it is a regular file of `size` bytes inside the uploads folder. */
  async #regularUpload(path: string, size: number): Promise<string | undefined> {
    if (!path.startsWith(`${UPLOADS}/`)) return undefined;
    const root = await this.#root();
    if (!root) return undefined;
    try {
      const small = size <= SYNC_WRITE_BYTES;
      const real = small ? realpathSync(join(this.#liveDir, path)) : await realpath(join(this.#liveDir, path));
      if (!real.startsWith(root + sep)) return undefined;
      const info = small ? statSync(real) : await stat(real);
      return info.isFile() && info.size === size ? real : undefined;
    } catch {
      return undefined; // absent, or unreadable: extract it
    }
  }
}

/** `copy` for a small upload, with synchronous calls: the same steps, the same outcomes. */
function copySmall(source: string, target: string, size: number, sha256: string): WrittenFile | undefined {
  let fd: number | undefined;
  try {
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(source, target, constants.COPYFILE_EXCL);
    fd = openSync(target, "r+");
    const hash = createHash("sha256");
    const buffer = Buffer.allocUnsafe(size + 1); // one byte more: a copy that grew is read to its end too
    for (let position = 0, bytesRead; (bytesRead = readSync(fd, buffer, 0, buffer.length, position)) > 0; position += bytesRead) {
      hash.update(buffer.subarray(0, bytesRead));
    }
    if (hash.digest("hex") === sha256) return writtenFile(fd);
  } catch {
    // Vanished, unreadable, or no room: extracting the entry instead reports what is really wrong.
  }
  try {
    if (fd !== undefined) closeSync(fd);
  } catch {}
  rmSync(target, { force: true });
  return undefined;
}

async function hashOf(handle: FileHandle): Promise<string> {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(READ_SIZE);
  for (let position = 0; ; ) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return hash.digest("hex");
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}
