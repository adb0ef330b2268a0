import Database from "libsql";
import { uninitializedBytes } from "../uninitialized-bytes.ts";
import { BUSY_TIMEOUT_MS } from "./database-handle.ts";

/**
 * Pages read per query: 256 pages of 4 KiB is 1 MiB a batch, the deflater's block size. Larger batches gained
 * nothing in speed and held more garbage at peak (1024-page batches about 90 MB more on the bench's database).
 */
const PAGES_PER_BATCH = 256;

/**
 * sqlite_dbpage answers `pgno = ?` directly but walks every page number for a range, which made each batch
 * cost O(database) (3.6 ms a query on 500 MB); joining a series of page numbers keeps every lookup an equality.
 */
const PAGE_SERIES = "WITH RECURSIVE p(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM p WHERE n < ?)";

/**
 * A batch as one value: its pages joined by SQLite, and how many there were.
 *
 * Why: as one row per page, the binding made a buffer for each page and this module copied them into the
 * batch; that was most of the cost of reading the pages (0.52–0.58 s for the bench's 500 MB database, against
 * 0.30–0.32 s this way). `group_concat` reads a blob's bytes as text in the database's encoding, unchanged when
 * that is UTF-8 (NUL bytes included: it counts bytes, not characters), and the cast takes them back as a blob;
 * a UTF-16 database would have them converted, so it is read a page a row (`PAGE_ROWS_SQL`).
 * Order: `CROSS JOIN` keeps the page numbers as the outer loop (SQLite's documented way to fix a join's order),
 * a recursive CTE without ORDER BY yields its rows first in, first out, and the aggregate takes rows as the loop
 * makes them. An `ORDER BY` in the aggregate would say so too, but it sorts the pages in a temp b-tree first
 * (0.64 s). The snapshot's tests compare its bytes with the database file's across several batches.
 */
const PAGE_BATCH_SQL = `${PAGE_SERIES} SELECT CAST(group_concat(data, '') AS BLOB), count(*) FROM p CROSS JOIN sqlite_dbpage ON pgno = n`;
const PAGE_ROWS_SQL = `${PAGE_SERIES} SELECT data FROM p JOIN sqlite_dbpage ON pgno = n ORDER BY n`;

/** A consistent, point-in-time image of one database, streamed page by page. */
export interface DatabaseSnapshot {
  /** Exact size of the image in bytes (page size × page count at the snapshot's moment). */
  size: number;
  stream: ReadableStream<Uint8Array>;
}

/**
 * Streams a consistent image of a libSQL/SQLite database without blocking its writers.
 *
 * Why this way (measured, see README "Design"): a read transaction in WAL mode pins one snapshot while
 * writers go on appending to the WAL; `sqlite_dbpage` then yields the pages as of that snapshot, so the
 * image needs no temp copy (`VACUUM INTO` takes about 4× longer and writes the whole database twice) and
 * holds no lock that writers wait on (PocketBase holds a write transaction for the whole backup).
 * It talks to the `libsql` binding under `@libsql/client` directly, with one prepared statement in raw mode:
 * the client's result sets (a row object per page) cost more than SQLite's own work, and reading the bench's
 * 500 MB database went from 0.93 s to 0.45 s. The transaction ends when the stream is drained or cancelled.
 */
export function snapshotDatabase(path: string): DatabaseSnapshot {
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
    const readBatch = batchReader(db, pageSize);
    let next = 1;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        try {
          if (next > pageCount) {
            finish();
            controller.close();
            return;
          }
          const last = Math.min(pageCount, next + PAGES_PER_BATCH - 1);
          const chunk = readBatch(next, last);
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
    return { size: pageSize * pageCount, stream };
  } catch (error) {
    finish();
    throw error;
  }
}

/**
 * Reads pages `first` to `last` of the snapshot as one buffer, checked to hold every one of them whole (a
 * database that shrank during its snapshot would be missing some).
 */
function batchReader(db: InstanceType<typeof Database>, pageSize: number): (first: number, last: number) => Uint8Array {
  const check = (first: number, last: number, pages: number, bytes: number) => {
    if (pages !== last - first + 1) throw new Error("The database changed size during its snapshot.");
    if (bytes !== pages * pageSize) throw new Error(`Pages ${first} to ${last} of the database are not ${pageSize} bytes each.`);
  };
  const encoding = String((db.prepare("PRAGMA encoding").raw().get() as [string])[0]);
  if (encoding === "UTF-8") {
    const batch = db.prepare<[number, number]>(PAGE_BATCH_SQL).raw();
    return (first, last) => {
      const [data, pages] = batch.get(first, last) as [Uint8Array | null, number];
      check(first, last, Number(pages), data?.length ?? 0);
      return data!;
    };
  }
  const rows = db.prepare<[number, number]>(PAGE_ROWS_SQL).raw();
  return (first, last) => {
    const pages = (rows.all(first, last) as [Uint8Array][]).map(([page]) => page);
    check(first, last, pages.length, pages.every((page) => page.length === pageSize) ? pages.length * pageSize : -1);
    // Not zeroed first: every byte is set below.
    const chunk = uninitializedBytes(pages.length * pageSize);
    for (const [i, page] of pages.entries()) chunk.set(page, i * pageSize);
    return chunk;
  };
}
