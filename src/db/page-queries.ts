import type Database from "libsql";
import { uninitializedBytes } from "../uninitialized-bytes.ts";

/** A connection of the `libsql` binding, inside the read transaction that holds a snapshot. */
export type SnapshotConnection = InstanceType<typeof Database>;

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
const ONE_PAGE_SQL = "SELECT data FROM sqlite_dbpage WHERE pgno = ?";

/** Reads pages of the snapshot through SQLite: a range as one buffer, or a single page. */
export interface PageQueries {
  /** Pages `first` to `last`, checked to be there, each whole (a database that shrank would be missing some). */
  range(first: number, last: number): Uint8Array;
  page(pgno: number): Uint8Array;
}

export function pageQueries(db: SnapshotConnection, pageSize: number): PageQueries {
  const check = (first: number, last: number, pages: number, bytes: number) => {
    if (pages !== last - first + 1) throw new Error("The database changed size during its snapshot.");
    if (bytes !== pages * pageSize) throw new Error(`Pages ${first} to ${last} of the database are not ${pageSize} bytes each.`);
  };
  const one = db.prepare<[number]>(ONE_PAGE_SQL).raw();
  const page = (pgno: number) => {
    const row = one.get(pgno) as [Uint8Array] | undefined;
    check(pgno, pgno, row ? 1 : 0, row?.[0].length ?? 0);
    return row![0];
  };
  const encoding = String((db.prepare("PRAGMA encoding").raw().get() as [string])[0]);
  if (encoding === "UTF-8") {
    const batch = db.prepare<[number, number]>(PAGE_BATCH_SQL).raw();
    return {
      range(first, last) {
        const [data, pages] = batch.get(first, last) as [Uint8Array | null, number];
        check(first, last, Number(pages), data?.length ?? 0);
        return data!;
      },
      page,
    };
  }
  const rows = db.prepare<[number, number]>(PAGE_ROWS_SQL).raw();
  return {
    range(first, last) {
      const pages = (rows.all(first, last) as [Uint8Array][]).map(([data]) => data);
      check(first, last, pages.length, pages.every((data) => data.length === pageSize) ? pages.length * pageSize : -1);
      // Not zeroed first: every byte is set below.
      const chunk = uninitializedBytes(pages.length * pageSize);
      for (const [i, data] of pages.entries()) chunk.set(data, i * pageSize);
      return chunk;
    },
    page,
  };
}
