import { closeSync, lstatSync, openSync, readdirSync, readSync } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { ArchiveSource } from "../archive/index.ts";
import { snapshotDatabase } from "../db/snapshot-database.ts";
import { reusedBuffers, type ChunkBuffers } from "../uninitialized-bytes.ts";
import { isDataRootEntry, SQLITE_COMPANION_SUFFIXES } from "../fs/data-dir.ts";

/** What a backup of a data directory holds (`collectSources`). */
export interface DataDirSources {
  /** Every source in archive order, each made as the archive reaches it. */
  sources: Iterable<ArchiveSource>;
  /** How many there are. */
  count: number;
  /** The databases' sources, first in `sources`: their sizes become exact as their snapshots open. */
  databases: ArchiveSource[];
  /** Bytes of the other files, as listed. */
  fileBytes: number;
}

/**
 * Lists what a backup of `dir` holds, in archive order: every `*.db` at the root as a consistent snapshot
 * (their `-wal`/`-shm` files left out, the snapshot already holds their committed pages), then every other
 * regular file, depth first, with `/`-separated relative paths. Symlinks and special files are skipped:
 * a backup holds files only. Snapshots start when the archive reaches them, so each stays open only
 * for as long as its own pages stream. `databaseFds`: descriptors this process keeps open on some of the
 * databases, by name, for their snapshots to read pages through (`snapshotDatabase`).
 *
 * The tree is walked with synchronous calls, and small files are read with them (`openFileSync`): this runs on
 * a job's own thread, where nothing else waits, and each asynchronous call is a round trip through the runtime's
 * thread pool, about 30 µs on this VM against 3–4 µs for the call itself. A backup of 50 000 small uploads made
 * eight such round trips a file.
 *
 * The files are listed as a path, a size and a time each, and become sources only as the archive reaches them.
 * Why: made all at once, a source per file (an object, a closure and its scope, a `Date`, the absolute path)
 * was 15 MB of the job thread's heap for 50 000 small uploads, held until the archive ended.
 */
export async function collectSources(dir: string, databaseFds: Record<string, number> = {}): Promise<DataDirSources> {
  const rootNames = (await readdir(dir)).filter(isDataRootEntry).sort();
  const databaseNames = rootNames.filter((name) => name.endsWith(".db"));
  const skipped = new Set(databaseNames.flatMap((db) => SQLITE_COMPANION_SUFFIXES.map((suffix) => `${db}${suffix}`)));
  // One set for every source: the archive reads them one after another.
  const buffers = reusedBuffers(3, READ_SIZE);
  const databases: ArchiveSource[] = [];
  for (const name of databaseNames) {
    const info = await lstat(join(dir, name));
    if (!info.isFile()) continue;
    databases.push(databaseSource(join(dir, name), name, info.size, info.mtime, Object.hasOwn(databaseFds, name) ? databaseFds[name] : undefined, buffers));
  }
  const paths: string[] = [];
  const sizes: number[] = [];
  const mtimes: number[] = [];
  const walk = (relative: string) => {
    const absolute = join(dir, relative);
    const info = lstatSync(absolute);
    if (info.isDirectory()) {
      for (const child of readdirSync(absolute).sort()) walk(`${relative}/${child}`);
    } else if (info.isFile()) {
      paths.push(relative);
      sizes.push(info.size);
      mtimes.push(info.mtimeMs);
    }
  };
  for (const name of rootNames) {
    if (databaseNames.includes(name) || skipped.has(name)) continue;
    walk(name);
  }
  function* sources(): Generator<ArchiveSource> {
    yield* databases;
    for (let i = 0; i < paths.length; i++) yield new FileSource(join(dir, paths[i]!), paths[i]!, sizes[i]!, new Date(mtimes[i]!), buffers);
  }
  return {
    sources: { [Symbol.iterator]: sources },
    count: databases.length + paths.length,
    databases,
    fileBytes: sizes.reduce((sum, size) => sum + size, 0),
  };
}

function databaseSource(path: string, name: string, fileSize: number, mtime: Date, pagesFd: number | undefined, buffers: ChunkBuffers): ArchiveSource {
  const source: ArchiveSource = {
    path: name,
    // The file's size is a close estimate for progress; the snapshot below sets the exact one.
    size: fileSize,
    lastModified: mtime,
    async open() {
      try {
        const snapshot = await snapshotDatabase(path, pagesFd === undefined ? {} : { pagesFd, buffers });
        source.size = snapshot.size;
        return snapshot.stream;
      } catch (error) {
        // A `*.db` that is not a database (an app's own file) is backed up as it is.
        if (!/NOTADB|not a database/i.test(String((error as Error).message) + String((error as { code?: string }).code)))
          throw error;
        return new FileSource(path, name, fileSize, mtime, buffers).open();
      }
    },
  };
  return source;
}

/** A regular file, read as it is. */
class FileSource implements ArchiveSource {
  constructor(
    readonly absolute: string,
    readonly path: string,
    readonly size: number,
    readonly lastModified: Date,
    private readonly buffers: ChunkBuffers,
  ) {}

  async open(): Promise<ReadableStream<Uint8Array>> {
    // Listed at up to one chunk: read with synchronous calls (why: `collectSources`).
    return readFileStream(this.size <= READ_SIZE ? openFileSync(this.absolute) : await openFile(this.absolute), this.buffers);
  }
}

/** Bytes read at a time: the deflater's block size. */
const READ_SIZE = 1024 * 1024;

/** An open file read front to back: `read` fills the buffer's start and says how much it filled, 0 at the end. */
interface OpenFile {
  read(buffer: Uint8Array): Promise<number> | number;
  close(): Promise<void> | void;
}

async function openFile(path: string): Promise<OpenFile> {
  const handle = await open(path, "r");
  return { read: async (buffer) => (await handle.read(buffer, 0, buffer.length, null)).bytesRead, close: () => handle.close() };
}

function openFileSync(path: string): OpenFile {
  const fd = openSync(path, "r");
  return { read: (buffer) => readSync(fd, buffer, 0, buffer.length, null), close: () => closeSync(fd) };
}

/**
 * A file as a stream of 1 MiB chunks read into `buffers`, to its end whatever its size now (it may have grown since
 * it was listed). Plain reads into a `ReadableStream` instead of a Node stream wrapped for the web: the wrapping
 * cost about 0.15 s of the job thread per 300 MB.
 */
function readFileStream(file: OpenFile, buffers: ChunkBuffers): ReadableStream<Uint8Array> {
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await file.close();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const buffer = buffers(READ_SIZE); // the read fills what is used
        const bytesRead = await file.read(buffer);
        if (bytesRead > 0) return controller.enqueue(bytesRead === READ_SIZE ? buffer : buffer.subarray(0, bytesRead));
        await close();
        controller.close();
      } catch (error) {
        await close().catch(() => {});
        controller.error(error);
      }
    },
    cancel: close,
  });
}
