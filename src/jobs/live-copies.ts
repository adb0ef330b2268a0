import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, mkdir, open, realpath, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join, sep } from "node:path";

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

  /**
   * Copies the live file at the entry's `path` to `target` when it holds the entry's bytes (`size`, `sha256`)
   * and returns the copy's open handle, for the caller to fsync and close. Otherwise returns undefined and
   * leaves nothing at `target`.
   */
  async copy(path: string, target: string, size: number, sha256: string): Promise<FileHandle | undefined> {
    // Looked up again, not taken from `mayHold`: seconds may pass between the two, and a path that became a FIFO
    // or a link out of storage/ meanwhile must not be opened (copying from a FIFO would block).
    const source = await this.#regularUpload(path, size);
    if (!source) return undefined;
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
    this.#uploadsRoot ??= realpath(join(this.#liveDir, UPLOADS)).catch(() => undefined);
    const root = await this.#uploadsRoot;
    if (!root) return undefined;
    try {
      const real = await realpath(join(this.#liveDir, path));
      if (!real.startsWith(root + sep)) return undefined;
      const info = await stat(real);
      return info.isFile() && info.size === size ? real : undefined;
    } catch {
      return undefined; // absent, or unreadable: extract it
    }
  }
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
