import { randomBytes } from "node:crypto";
import { readSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileSystemCause, NotFoundError, StorageError } from "../errors.ts";
import { syncDir } from "../fs/durable-files.ts";
import { WriteBehind } from "../fs/write-behind.ts";
import { fileSha256InWorker } from "../fs/file-digest.ts";
import { uninitializedBytes } from "../uninitialized-bytes.ts";
import type { BackupInfo, BackupStore, BlockIndexFiles, ByteRange, PendingWrite, RandomAccessSource } from "./backup-store.ts";
import { assertSafeKey, fitsNewKey, MAX_NEW_KEY_BYTES } from "./keys.ts";

/** Temp files, checksum sidecars and block indexes live in hidden subfolders, so a key can never collide with them. */
const TEMP_DIR = ".tmp";
const META_DIR = ".meta";
const BLOCKS_DIR = ".blocks";

/** Backups as files in `<data dir>/backups`: temp name, fsync, rename; the archive checksum in a sidecar. */
export class LocalBackupStore implements BackupStore {
  constructor(readonly dir: string) {}

  /** On a local disk, copying an earlier backup's blocks beats deflating them again. */
  readonly blockIndexes: BlockIndexFiles = {
    read: (key) => {
      assertSafeKey(key);
      return readFile(this.#blocksPath(key), "utf8").catch(() => undefined);
    },
    write: (key, text) => {
      assertSafeKey(key);
      // Private like the archives: piece fingerprints, with their key beside them, would let a reader confirm
      // guesses at the data.
      return writeFileAtomic(this.#blocksPath(key), text, 0o600);
    },
  };

  async list(): Promise<BackupInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw storageError("list the backups", error);
    }
    const infos = await Promise.all(
      names.filter((name) => !name.startsWith(".")).map((name) => this.stat(name).catch(() => undefined)),
    );
    return infos.filter((info): info is BackupInfo => info !== undefined);
  }

  async stat(key: string): Promise<BackupInfo> {
    assertSafeKey(key);
    try {
      const info = await stat(join(this.dir, key));
      if (!info.isFile()) throw new NotFoundError(`Backup ${key} not found.`);
      const sha256 = await readFile(this.#metaPath(key), "utf8").then((s) => s.trim(), () => undefined);
      return { key, size: info.size, modified: info.mtime, ...(sha256 ? { sha256 } : {}) };
    } catch (error) {
      throw mapError(error, key, "read the backup");
    }
  }

  async read(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const { size } = await this.stat(key);
    // A native file stream: Bun keeps the response's Content-Length for it, not for Node-stream bridges.
    return Bun.file(join(this.dir, key)).slice(range?.start ?? 0, (range?.end ?? size - 1) + 1).stream();
  }

  async open(key: string): Promise<RandomAccessSource> {
    await this.stat(key);
    return openFile(join(this.dir, key));
  }

  async write(key: string): Promise<PendingWrite> {
    assertSafeKey(key);
    // The files named after the key must fit the file system's 255-byte limit (`MAX_NEW_KEY_BYTES`).
    if (!fitsNewKey(key)) throw new StorageError(`Failed to store the backup: the key is longer than ${MAX_NEW_KEY_BYTES} bytes.`);
    const tempDir = join(this.dir, TEMP_DIR);
    await mkdir(tempDir, { recursive: true }).catch((error) => {
      throw storageError("prepare the backups folder", error);
    });
    const id = `${randomBytes(8).toString("hex")}.part`;
    const temp = join(tempDir, id);
    const handle = await open(temp, "wx", 0o600).catch((error) => {
      throw storageError("store the backup", error);
    });
    let closed = false;
    const closeHandle = async () => {
      if (!closed) {
        closed = true;
        await handle.close();
      }
    };
    // Flush as we go (`write-behind.ts`): dirty pages stay bounded, so an app's own fsync (a checkpoint of
    // data.db) does not wait behind hundreds of MB of archive on ext4 (bench/README.md).
    const writeBehind = new WriteBehind(() => handle.datasync());
    // A full disk (ENOSPC) shows up in a write, a flush or the final sync: each is the store's StorageError,
    // so the caller can tell it from a broken archive or a bug.
    const stream = new WritableStream<Uint8Array>({
      write: (chunk) =>
        storing(async () => {
          let done = 0;
          while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
          await writeBehind.wrote(chunk.length);
        }),
      close: () =>
        storing(async () => {
          await writeBehind.settled();
          await handle.sync();
          await closeHandle();
        }),
      async abort() {
        await writeBehind.settled().catch(() => {});
        await closeHandle();
      },
    });
    return {
      id,
      stream,
      commit: (sha256) => storing(() => this.#publish(key, temp, sha256, closeHandle)),
      abort: async () => {
        await closeHandle().catch(() => {});
        await rm(temp, { force: true });
      },
    };
  }

  /** The sidecar goes first (an archive is never visible without its checksum); a failed rename takes it back. */
  async #publish(key: string, temp: string, sha256: string, closeHandle: () => Promise<void>): Promise<void> {
    await closeHandle();
    await writeFileAtomic(this.#metaPath(key), sha256);
    try {
      await rename(temp, join(this.dir, key));
    } catch (error) {
      await rm(this.#metaPath(key), { force: true }).catch(() => {});
      throw error;
    }
    await syncDir(this.dir);
  }

  async openPending(id: string): Promise<RandomAccessSource> {
    if (!/^[0-9a-f]{16}\.part$/.test(id)) throw new NotFoundError("Unknown pending write.");
    return openFile(join(this.dir, TEMP_DIR, id)).catch((error) => {
      throw mapError(error, id, "read the pending backup");
    });
  }

  async delete(key: string): Promise<void> {
    await this.stat(key);
    try {
      await rm(join(this.dir, key));
      await removeSidecar(this.#metaPath(key));
      await removeSidecar(this.#blocksPath(key));
    } catch (error) {
      throw mapError(error, key, "delete the backup");
    }
  }

  async cleanup(): Promise<void> {
    await rm(join(this.dir, TEMP_DIR), { recursive: true, force: true });
    // Sidecars whose backup is gone, and the temp files of sidecar writes a crash cut short.
    for (const [folder, suffix] of [[META_DIR, ".sha256"], [BLOCKS_DIR, ".json"]] as const) {
      for (const name of await readdir(join(this.dir, folder)).catch(() => [] as string[])) {
        const key = name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined;
        const exists = key !== undefined && (await stat(join(this.dir, key)).then(() => true, () => false));
        if (!exists) await rm(join(this.dir, folder, name), { force: true });
      }
    }
  }

  /** A local directory is consistent at once: nothing to wait for. */
  expect(): void {}

  #metaPath(key: string) {
    return join(this.dir, META_DIR, `${key}.sha256`);
  }

  #blocksPath(key: string) {
    return join(this.dir, BLOCKS_DIR, `${key}.json`);
  }
}

/** Temp name, then rename; a failed write (a full disk) removes its temp file, so nothing half-written stays. */
async function writeFileAtomic(path: string, content: string, mode?: number) {
  const dir = join(path, "..");
  await mkdir(dir, { recursive: true });
  const temp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, content, mode === undefined ? {} : { mode });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
}

/**
 * Removes a sidecar if there is one. A key placed in the backups folder by hand may use all 255 bytes, so its
 * sidecar's name can be too long to exist at all (ENAMETOOLONG): that is no sidecar, not a failure.
 */
async function removeSidecar(path: string): Promise<void> {
  await rm(path, { force: true }).catch((error) => {
    if ((error as NodeJS.ErrnoException).code !== "ENAMETOOLONG") throw error;
  });
}

function mapError(error: unknown, key: string, action: string): Error {
  if (error instanceof NotFoundError || error instanceof StorageError) return error;
  if ((error as NodeJS.ErrnoException).code === "ENOENT") return new NotFoundError(`Backup ${key} not found.`);
  return storageError(action, error);
}

/** `Failed to <action>: <cause> (<CODE>).`, or `Failed to <action> (<CODE>).` for a cause without words; never a path. */
function storageError(action: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const cause = fileSystemCause(error);
  return new StorageError(`Failed to ${action}${cause ? (cause.startsWith("(") ? ` ${cause}` : `: ${cause}`) : ""}.`);
}

/** Runs one step of storing a backup; a file system error becomes the store's StorageError. */
async function storing<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw storageError("store the backup", error);
  }
}

/**
 * Reads up to this size are made with a synchronous call. Archives are read on a job's own thread, where an
 * asynchronous read is a round trip through the runtime's thread pool (about 30 µs on this VM, against 3 µs for a
 * small read from the page cache): a restore of 50 000 small uploads made several a file, in headers and data.
 * Larger reads stay asynchronous, so that their copy overlaps the thread's other work.
 */
const SYNC_READ_BYTES = 256 * 1024;

async function openFile(path: string): Promise<RandomAccessSource> {
  const handle = await open(path, "r");
  const { size, dev, ino } = await handle.stat();
  return {
    size,
    freshReads: true,
    // The same file as this handle's, even if another is renamed over its path meanwhile.
    sha256BesideReaders: () => fileSha256InWorker(path, { dev, ino }),
    async read(offset, length, into) {
      const wanted = Math.max(0, Math.min(length, size - offset)); // only bytes read are handed out
      const buffer = into && into.length >= wanted ? into.subarray(0, wanted) : uninitializedBytes(wanted);
      let done = 0;
      while (done < buffer.length) {
        const bytesRead =
          buffer.length <= SYNC_READ_BYTES
            ? readSync(handle.fd, buffer, done, buffer.length - done, offset + done)
            : (await handle.read(buffer, done, buffer.length - done, offset + done)).bytesRead;
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === buffer.length ? buffer : buffer.subarray(0, done);
    },
    close: () => handle.close(),
  };
}
