import { describe, expect, test } from "bun:test";
import type { ArchiveSourceReader } from "../../src/archive/zip/index.ts";
import { type ArchiveSource, readArchive, verifyArchive, writeArchive } from "../../src/archive/index.ts";
import { EntryWriteError, InvalidBackupError, StorageError } from "../../src/errors.ts";
import { jsonRows } from "../support/sample-data.ts";

// Failures around a good archive (the store it is read from, the disk its entries go to) must be told as what
// they are, never as a corrupt archive: a backup reported corrupt may be deleted, and a restore that ran out of
// disk must say so.

const MiB = 1024 * 1024;

/** A good archive: data.db large enough to be deflated in blocks (inflated on the workers), and an upload. */
async function goodArchive(): Promise<Uint8Array> {
  const file = (path: string, bytes: Uint8Array): ArchiveSource => ({
    path,
    size: bytes.length,
    lastModified: new Date(2024, 4, 6),
    open: async () => new Blob([bytes as BlobPart]).stream(),
  });
  const chunks: Uint8Array[] = [];
  await writeArchive(
    [file("data.db", jsonRows(3 * MiB + 5, 1)), file("storage/a/notes.txt", jsonRows(20_000, 2))],
    new WritableStream({ write: (chunk) => void chunks.push(chunk.slice()) }),
    { producer: "test" },
  );
  return new Uint8Array(Buffer.concat(chunks));
}

/** The archive as a store would serve it, failing the reads `fails` picks. */
function failingStore(zip: Uint8Array, fails: (offset: number, length: number) => boolean): ArchiveSourceReader & { failed: number } {
  const source = {
    size: zip.length,
    failed: 0,
    read: async (offset: number, length: number) => {
      if (fails(offset, length)) {
        source.failed++;
        throw new StorageError("Failed to read the backup (ECONNRESET).");
      }
      return zip.slice(offset, offset + length);
    },
  };
  return source;
}

const reader = (zip: Uint8Array) => failingStore(zip, () => false);
/** Whether a read overlaps the middle fifth of the archive: inside data.db's data, far from the central directory. */
const inTheMiddle = (zip: Uint8Array) => (offset: number, length: number) => offset < zip.length * 0.6 && offset + length > zip.length * 0.4;

/** A sink that takes `goodBytes` of an entry, then fails as a full disk would. */
function fullDisk(goodBytes: number) {
  return async () => {
    let taken = 0;
    return new WritableStream<Uint8Array>({
      write: (chunk) => {
        taken += chunk.length;
        if (taken > goodBytes) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      },
    });
  };
}

describe("readArchive: failures around the archive are not reported as a corrupt archive", () => {
  test("the store failing mid-entry: its StorageError, as it is", async () => {
    const zip = await goodArchive();
    const source = failingStore(zip, inTheMiddle(zip));
    const failure = await readArchive(source, { sink: async () => new WritableStream() }).catch((error: Error) => error);
    expect(source.failed).toBeGreaterThan(0);
    expect(failure).toBeInstanceOf(StorageError);
    expect((failure as Error).message).toBe("Failed to read the backup (ECONNRESET).");
  });

  test("the store failing while the central directory is read: its StorageError, not 'truncated or corrupt'", async () => {
    const zip = await goodArchive();
    const failure = await readArchive(failingStore(zip, (offset, length) => offset + length > zip.length - 100)).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(StorageError);
  });

  test("the disk filling while a block-deflated entry is written: EntryWriteError naming the entry and the cause", async () => {
    const zip = await goodArchive();
    const failure = await readArchive(reader(zip), { sink: fullDisk(MiB) }).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(EntryWriteError);
    expect(failure).not.toBeInstanceOf(InvalidBackupError);
    expect((failure as Error).message).toBe("The entry data.db could not be written: the disk is full (ENOSPC).");
  });

  test("a sink that fails as it closes is a write failure too", async () => {
    const zip = await goodArchive();
    const failsOnClose = async () =>
      new WritableStream<Uint8Array>({
        close: () => {
          throw Object.assign(new Error("EIO: i/o error, close '/srv/pb_data/.pb_restore_staging/data.db'"), { code: "EIO" });
        },
      });
    const failure = await readArchive(reader(zip), { sink: failsOnClose }).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(EntryWriteError);
    expect((failure as Error).message).toBe("The entry data.db could not be written: an input/output error (EIO)."); // no path
  });

  test("the same archive, read whole, is fine: the failures above were not its own", async () => {
    const zip = await goodArchive();
    const report = await readArchive(reader(zip), { sink: async () => new WritableStream() });
    expect(report.entries).toBe(2);
  });
});

describe("verifyArchive: a verify that cannot read or write fails, instead of finding problems", () => {
  test("the store failing mid-entry: the verify rejects with its StorageError", async () => {
    const zip = await goodArchive();
    // verify reads each byte once, for the entries and the archive's SHA-256 alike: every read of the middle fails.
    const source = failingStore(zip, inTheMiddle(zip));
    const failure = await verifyArchive(source).catch((error: Error) => error);
    expect(source.failed).toBeGreaterThan(0);
    expect(failure).toBeInstanceOf(StorageError);
  });

  test("the disk filling while data.db is copied out to be checked: the verify rejects with EntryWriteError", async () => {
    const zip = await goodArchive();
    const failure = await verifyArchive(reader(zip), { sink: fullDisk(MiB) }).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(EntryWriteError);
    expect((failure as Error).message).toBe("The entry data.db could not be written: the disk is full (ENOSPC).");
  });

  test("the same archive verifies clean", async () => {
    const report = await verifyArchive(reader(await goodArchive()));
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
