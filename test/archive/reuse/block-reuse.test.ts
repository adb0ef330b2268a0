import { describe, expect, test } from "bun:test";
import { type BlockIndex, BlockIndexBuilder, findRecord, findReusable, parseBlockIndex, RECORD_BYTES, recordAt, recordCount, ReusablePieces, serializeBlockIndex, writeRecord } from "../../../src/archive/reuse/index.ts";
import { FINGERPRINT_BYTES, newFingerprintKey } from "../../../src/archive/engine/index.ts";
import { type ArchiveSource, MANIFEST_PATH, readArchive, writeArchive, type WrittenArchive } from "../../../src/archive/index.ts";
import { entryHeaderOffset, sha256Hex, unzipAll } from "../../support/archives.ts";
import { jsonRows } from "../../support/sample-data.ts";

const MiB = 1024 * 1024;

function source(path: string, bytes: Uint8Array): ArchiveSource {
  return { path, size: bytes.length, lastModified: new Date(2024, 4, 6, 7, 8, 10), open: async () => new Blob([bytes as BlobPart]).stream() };
}

/** A database of five 1 MiB blocks and a bit, a small text file (one last block) and a photo (stored). */
function dataSet(database = jsonRows(5 * MiB + 1000, 1)) {
  return { database, notes: jsonRows(40_000, 2), photo: crypto.getRandomValues(new Uint8Array(50_000)) };
}

async function write(set: ReturnType<typeof dataSet>, reuse?: { archive: Uint8Array; written: WrittenArchive }, level = 2) {
  const chunks: Uint8Array[] = [];
  const written = await writeArchive(
    [source("data.db", set.database), source("storage/notes.txt", set.notes), source("storage/photo.jpg", set.photo)],
    new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
    { producer: "test", level, indexBlocks: true, ...(reuse ? { reuse: new ReusablePieces(indexOf(reuse.written), reader(reuse.archive)) } : {}) },
  );
  return { archive: new Uint8Array(Buffer.concat(chunks)), written };
}

const reader = (zip: Uint8Array) => ({ size: zip.length, read: async (o: number, l: number) => zip.slice(o, o + l) });

function indexOf(written: WrittenArchive): BlockIndex {
  return { key: "earlier.zip", archiveSize: written.size, archiveSha256: written.sha256, level: 2, ...written.pieces! };
}

/** Every entry extracted by zip.js (an independent reader), each against the bytes it was made from. */
async function expectHolds(archive: Uint8Array, set: ReturnType<typeof dataSet>) {
  const files = await unzipAll(archive);
  expect(sha256Hex(files.get("data.db")!)).toBe(sha256Hex(set.database));
  expect(sha256Hex(files.get("storage/notes.txt")!)).toBe(sha256Hex(set.notes));
  expect(sha256Hex(files.get("storage/photo.jpg")!)).toBe(sha256Hex(set.photo));
  // Our own reader checks every CRC-32, size and the manifest's SHA-256s.
  expect((await readArchive(reader(archive))).entries).toBe(3);
}

describe("reusing an earlier archive's deflated pieces", () => {
  test("an archive of the same data reuses every piece and comes out byte for byte the same up to its manifest", async () => {
    const set = dataSet();
    const first = await write(set);
    const deflatable = set.database.length + set.notes.length; // the photo is stored, not deflated
    expect(first.written.reuse.reusedBytes).toBe(0);
    // data.db: five 1 MiB blocks of 22 pieces and a last block of one; the notes and the manifest: one each.
    expect(recordCount(first.written.pieces!.records)).toBe(5 * 22 + 1 + 2);
    const second = await write(set, first);
    // Only the manifest (its creation time differs) is deflated again.
    expect(second.written.reuse.reusedBytes).toBe(deflatable);
    expect(second.written.reuse.deflatedBytes).toBe(first.written.reuse.deflatedBytes - deflatable);
    // Up to the manifest's local header: that header holds the manifest's own time, which may differ.
    const manifestAt = entryHeaderOffset(first.archive, MANIFEST_PATH);
    expect(entryHeaderOffset(second.archive, MANIFEST_PATH)).toBe(manifestAt);
    expect(Buffer.from(second.archive.subarray(0, manifestAt)).equals(Buffer.from(first.archive.subarray(0, manifestAt)))).toBe(true);
    await expectHolds(second.archive, set);
  });

  test("above the fast levels (zlib, one piece a block) whole blocks are reused the same way", async () => {
    const set = dataSet();
    const first = await write(set, undefined, 6);
    expect(recordCount(first.written.pieces!.records)).toBe(6 + 2); // data.db's six blocks, the notes, the manifest
    const second = await write(set, first, 6);
    expect(second.written.reuse.reusedBytes).toBe(set.database.length + set.notes.length);
    await expectHolds(second.archive, set);
  });

  test("a changed page costs one piece of about 48 KiB deflated again, not its block, and the archive holds the new data", async () => {
    const set = dataSet();
    const first = await write(set);
    const changed = { ...set, database: set.database.slice() };
    changed.database.set(new TextEncoder().encode("a row changed since the last backup"), 2 * MiB + 500);
    const second = await write(changed, first);
    const manifestBytes = first.written.reuse.deflatedBytes - set.database.length - set.notes.length;
    const piece = Math.ceil(MiB / 22);
    expect(second.written.reuse.deflatedBytes - manifestBytes).toBe(piece);
    expect(second.written.reuse.reusedBytes).toBe(set.database.length + set.notes.length - piece);
    await expectHolds(second.archive, changed);
  });

  test("a piece that came out no smaller than its input (random bytes, stored) is stored again, not read back; the archive is the same", async () => {
    // data.db: two 1 MiB blocks of rows around one of random bytes (22 pieces, each stored).
    const database = new Uint8Array(Buffer.concat([jsonRows(MiB, 3), crypto.getRandomValues(new Uint8Array(MiB)), jsonRows(MiB + 1000, 4)]));
    const set = dataSet(database);
    const first = await write(set, undefined, 1);
    const second = await write(set, first, 1);
    // Everything of the rows and the notes is reused; the random megabyte is deflated (stored) again.
    expect(second.written.reuse.reusedBytes).toBe(2 * MiB + 1000 + set.notes.length);
    const manifestAt = entryHeaderOffset(first.archive, MANIFEST_PATH);
    expect(Buffer.from(second.archive.subarray(0, manifestAt)).equals(Buffer.from(first.archive.subarray(0, manifestAt)))).toBe(true);
    await expectHolds(second.archive, set);
  });

  test("findReusable offers a found piece only when it is smaller than the input it stands for", () => {
    const fingerprint = new Uint8Array(FINGERPRINT_BYTES).fill(9);
    const records = new Uint8Array(RECORD_BYTES);
    writeRecord(records, 0, { fingerprint, last: false, offset: 100, length: 49_157, crc32: 1 });
    expect(findRecord(records, fingerprint, false)).toBe(0);
    expect(findReusable(records, fingerprint, false, 49_158)).toBe(0);
    expect(findReusable(records, fingerprint, false, 49_157)).toBeUndefined();
    expect(findReusable(records, fingerprint, false, 49_152)).toBeUndefined();
    expect(findReusable(records, fingerprint, true, 60_000)).toBeUndefined();
  });

  test("pieces fingerprinted with another key are not found: the key goes with the index", async () => {
    const set = dataSet();
    const first = await write(set);
    const index = { ...indexOf(first.written), fingerprintKey: newFingerprintKey() };
    const written = await writeArchive(
      [source("data.db", set.database), source("storage/notes.txt", set.notes), source("storage/photo.jpg", set.photo)],
      new WritableStream(),
      { producer: "test", indexBlocks: true, reuse: new ReusablePieces(index, reader(first.archive)) },
    );
    expect(written.reuse.reusedBytes).toBe(0);
    expect(written.pieces!.fingerprintKey).toEqual(index.fingerprintKey);
  });

  test("a piece that ended its stream is only offered for an entry's last piece, and read back checked", async () => {
    const piece = new Uint8Array([1, 2, 3, 4]);
    const fingerprint = new Uint8Array(FINGERPRINT_BYTES).fill(0xbb);
    const records = new Uint8Array(RECORD_BYTES);
    writeRecord(records, 0, { fingerprint, last: true, offset: 0, length: 4, crc32: Number(Bun.hash.crc32(piece)) });
    const index: BlockIndex = { key: "a.zip", archiveSize: 4, archiveSha256: "a".repeat(64), level: 2, fingerprintKey: newFingerprintKey(), records };
    const pieces = new ReusablePieces(index, reader(piece));
    expect(findRecord(pieces.lookup, fingerprint, true)).toBe(0);
    expect(findRecord(pieces.lookup, fingerprint, false)).toBeUndefined();
    expect(await pieces.read([0])).toEqual([{ data: piece, crc32: recordAt(records, 0).crc32 }]);
  });

  test("a block with a piece that no longer reads back as indexed (CRC-32, or past the end) is deflated whole instead", async () => {
    const set = dataSet();
    const first = await write(set);
    const damaged = first.archive.slice();
    const index = indexOf(first.written);
    const { offset, length } = recordAt(index.records, 1); // in data.db's first block
    damaged[offset + Math.floor(length / 2)]! ^= 0xff;
    const moved = recordAt(index.records, 30); // in its second block
    writeRecord(index.records, 30, { ...moved, fingerprint: moved.fingerprint.slice(), offset: damaged.length - 10, length: 5000 });
    const chunks: Uint8Array[] = [];
    const written = await writeArchive(
      [source("data.db", set.database), source("storage/notes.txt", set.notes), source("storage/photo.jpg", set.photo)],
      new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
      { producer: "test", reuse: new ReusablePieces(index, reader(damaged)) },
    );
    const manifestBytes = first.written.reuse.deflatedBytes - set.database.length - set.notes.length;
    expect(written.reuse.deflatedBytes - manifestBytes).toBe(2 * MiB);
    await expectHolds(new Uint8Array(Buffer.concat(chunks)), set);
  });

  test("an index past its size limit is dropped, not kept growing, and fingerprinting is told to stop", () => {
    let full = 0;
    const builder = new BlockIndexBuilder(true, { maxPieces: 3, onFull: () => full++ });
    const block = (offset: number) => ({
      data: new Uint8Array(20),
      last: false,
      offset,
      inputLength: 100,
      pieces: [10, 10].map((length) => ({ inputLength: 50, length, fingerprint: new Uint8Array(FINGERPRINT_BYTES), reused: false })),
    });
    builder.add(block(0));
    expect(recordCount(builder.records()!)).toBe(2);
    builder.add(block(20));
    builder.add(block(40));
    expect(builder.records()).toBeUndefined();
    expect(full).toBe(1);
    expect(builder.counts).toEqual({ deflatedBytes: 300, reusedBytes: 0, skipped: "too large" });
  });

  test("an index is stored as JSON with packed records, and parsed strictly: anything malformed is no index at all", () => {
    const records = new Uint8Array(2 * RECORD_BYTES);
    writeRecord(records, 0, { fingerprint: new Uint8Array(FINGERPRINT_BYTES).fill(1), last: false, offset: 2 ** 33 + 5, length: 47_000, crc32: 0xfedcba98 });
    writeRecord(records, 1, { fingerprint: new Uint8Array(FINGERPRINT_BYTES).fill(2), last: true, offset: 7, length: 3, crc32: 1 });
    const index: BlockIndex = { key: "a.zip", archiveSize: 2 ** 34, archiveSha256: "a".repeat(64), level: 2, fingerprintKey: newFingerprintKey(), records };
    const text = serializeBlockIndex(index);
    const parsed = parseBlockIndex(text)!;
    expect(parsed).toEqual(index);
    expect(recordAt(parsed.records, 0)).toEqual({ fingerprint: new Uint8Array(FINGERPRINT_BYTES).fill(1), last: false, offset: 2 ** 33 + 5, length: 47_000, crc32: 0xfedcba98 });
    const json = JSON.parse(text);
    for (const bad of [
      "not json",
      JSON.stringify({ ...json, format: 2 }), // SHA-256 fingerprints, before keys
      JSON.stringify({ ...json, fingerprintKey: undefined }),
      JSON.stringify({ ...json, fingerprintKey: "AAAA" }), // not 16 bytes
      JSON.stringify({ ...json, count: 3 }), // more records claimed than there are
      JSON.stringify({ ...json, pieces: "not base64!" }),
      JSON.stringify({ ...json, archiveSha256: undefined }),
      JSON.stringify({ ...json, archiveSize: -1 }),
    ]) {
      expect(parseBlockIndex(bad)).toBeUndefined();
    }
  });
});
