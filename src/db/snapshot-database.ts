import { Buffer } from "node:buffer";
import { fstat as fstatCallback } from "node:fs";
import { stat } from "node:fs/promises";
import { promisify } from "node:util";
import Database from "libsql";
import { uninitializedBytes, type ChunkBuffers } from "../uninitialized-bytes.ts";
import { BUSY_TIMEOUT_MS } from "./database-handle.ts";
import { pageQueries, type PageQueries, type SnapshotConnection } from "./page-queries.ts";
import { readFully } from "./read-fully.ts";
import { walPages } from "./wal-pages.ts";

/**
 * Pages read at a time: 256 pages of 4 KiB is 1 MiB a batch, the deflater's block size. Larger batches gained
 * nothing in speed and held more garbage at peak (1024-page batches about 90 MB more on the bench's database).
 */
const PAGES_PER_BATCH = 256;
/** A batch with more pages than this in the WAL is read through SQLite whole: one query rather than many. */
const MAX_WAL_PAGES_PER_BATCH = 32;
/** Journal modes without a WAL: the read transaction's shared lock keeps every writer out of the file. */
const ROLLBACK_MODES = new Set(["delete", "truncate", "persist", "memory", "off"]);

export interface SnapshotOptions {
  /** A read-only descriptor of the database file to read most pages through (see `snapshotDatabase`). */
  pagesFd?: number;
  /**
   * Memory to read the pages from the file into, which may be used again once the stream's next chunk is read
   * (`reusedBuffers`); new memory for every chunk when absent.
   */
  buffers?: ChunkBuffers;
}

/** A consistent, point-in-time image of one database, streamed page by page. */
export interface DatabaseSnapshot {
  /** Exact size of the image in bytes (page size × page count at the snapshot's moment). */
  size: number;
  stream: ReadableStream<Uint8Array>;
  /** Where its pages are read from: the file where it holds them as the snapshot sees them (`fileReader`), or SQLite. */
  pagesFrom: "file" | "sqlite";
}

/**
 * Streams a consistent image of a libSQL/SQLite database without blocking its writers.
 *
 * Why this way (measured, see docs/architecture.md): a read transaction in WAL mode pins one snapshot while
 * writers go on appending to the WAL; `sqlite_dbpage` then yields the pages as of that snapshot, so the
 * image needs no temp copy (`VACUUM INTO` takes about 4× longer and writes the whole database twice) and
 * holds no lock that writers wait on (PocketBase holds a write transaction for the whole backup).
 * It talks to the `libsql` binding under `@libsql/client` directly, with one prepared statement in raw mode:
 * the client's result sets (a row object per page) cost more than SQLite's own work, and reading the bench's
 * 500 MB database went from 0.93 s to 0.45 s. The transaction ends when the stream is drained or cancelled.
 *
 * Given `pagesFd`, a read-only descriptor of the file that the caller keeps open beyond the snapshot, most pages
 * are read from the file itself, a batch at a time, and only those the WAL may hold through SQLite
 * (`fileReader`). The snapshot never opens a descriptor of the file of its own: closing it would drop every
 * POSIX lock this process holds on the file, SQLite's included (the server's connection to `data.db`), and
 * another process could then take the database for its own (delete the WAL under it, for one).
 */
export async function snapshotDatabase(path: string, options: SnapshotOptions = {}): Promise<DatabaseSnapshot> {
  const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  const finish = () => {
    if (!db.open) return;
    // Ended explicitly: a statement the binding has not finalized yet keeps a closed connection (and its
    // snapshot) alive until garbage collection, and the app's next checkpoint would wait for it.
    if (db.inTransaction) db.exec("ROLLBACK");
    db.close();
  };
  try {
    db.exec("BEGIN");
    // The first read starts the snapshot; page_count and every page below come from that same snapshot.
    const pageSize = Number((db.prepare("PRAGMA page_size").raw().get() as [number])[0]);
    const pageCount = Number((db.prepare("PRAGMA page_count").raw().get() as [number])[0]);
    const queries = pageQueries(db, pageSize);
    const fromFile = options.pagesFd === undefined ? undefined : await fileReader(path, options.pagesFd, db, { pageSize, pageCount }, queries, options.buffers ?? uninitializedBytes);
    const readBatch = fromFile ?? (async (first: number, last: number) => queries.range(first, last));
    let next = 1;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          if (next > pageCount) {
            finish();
            controller.close();
            return;
          }
          const last = Math.min(pageCount, next + PAGES_PER_BATCH - 1);
          const chunk = await readBatch(next, last);
          next = last + 1;
          controller.enqueue(chunk);
        } catch (error) {
          finish();
          controller.error(error);
        }
      },
      cancel() {
        finish();
      },
    });
    return { size: pageSize * pageCount, stream, pagesFrom: fromFile ? "file" : "sqlite" };
  } catch (error) {
    finish();
    throw error;
  }
}

/**
 * Reads the snapshot's pages from the database file (through `fd`) where the file holds them as the snapshot sees
 * them, and the others through SQLite; undefined where that cannot be told (an unknown journal mode or WAL
 * format), where `fd` is not the file at `path`, or where the file's first pages are not SQLite's (an encrypted
 * database): everything is read through SQLite then.
 *
 * Why: through SQLite every page is a 4 KiB read and a copy or two on the job's thread: 0.30 s for the bench's
 * database, the largest part of that thread's work in a backup that reuses most pieces. From the file a batch is
 * one 1 MiB read on the thread pool.
 * Why the file holds the snapshot's bytes: in WAL mode a page with no frame in the WAL has its snapshot version in
 * the file, and no checkpoint can overwrite it while the snapshot is held (a checkpoint copies no frame newer
 * than the oldest reader's snapshot, and none at all while a reader ignores the WAL). The WAL is read after the
 * snapshot started, so it holds every frame the snapshot sees (SQLite restarts a WAL only when no reader uses
 * it); those pages, and any past the file's end (the database grew since its last checkpoint), are read through
 * SQLite. In the rollback modes the transaction's shared lock keeps writers out of the file altogether.
 */
async function fileReader(
  path: string,
  fd: number,
  db: SnapshotConnection,
  { pageSize, pageCount }: { pageSize: number; pageCount: number },
  queries: PageQueries,
  buffers: ChunkBuffers,
): Promise<((first: number, last: number) => Promise<Uint8Array>) | undefined> {
  if (pageCount === 0) return undefined;
  const [byPath, byFd] = await Promise.all([stat(path), fstat(fd)]);
  if (byPath.dev !== byFd.dev || byPath.ino !== byFd.ino) return undefined;
  const mode = String((db.prepare("PRAGMA journal_mode").raw().get() as [string])[0]).toLowerCase();
  const inWal = mode === "wal" ? await walPages(`${path}-wal`, pageSize) : ROLLBACK_MODES.has(mode) ? new Set<number>() : undefined;
  if (!inWal) return undefined;
  const readBatch = async (first: number, last: number) => {
    let walCount = 0;
    for (let pgno = first; pgno <= last && walCount <= MAX_WAL_PAGES_PER_BATCH; pgno++) if (inWal.has(pgno)) walCount++;
    if (walCount > MAX_WAL_PAGES_PER_BATCH) return queries.range(first, last);
    // Not zeroed first: every page is filled by the read or set below.
    const chunk = buffers((last - first + 1) * pageSize);
    const filled = await readFully(fd, chunk, (first - 1) * pageSize);
    for (let pgno = first; pgno <= last; pgno++) {
      const at = (pgno - first) * pageSize;
      if (inWal.has(pgno) || at + pageSize > filled) chunk.set(queries.page(pgno), at);
    }
    return chunk;
  };
  const last = Math.min(pageCount, PAGES_PER_BATCH);
  const [fromFile, fromSqlite] = [await readBatch(1, last), queries.range(1, last)];
  return Buffer.from(fromFile.buffer, fromFile.byteOffset, fromFile.length).equals(fromSqlite) ? readBatch : undefined;
}

const fstat = promisify(fstatCallback);
