import { describe, expect, test } from "bun:test";
import { BLOCK_INDEX_FORMAT, BlockIndexBuilder, parseBlockIndex, ReusablePieces, type BlockIndex } from "../../src/archive/block-reuse.ts";
import { reuseKey } from "../../src/archive/deflate-block.ts";
import { MANIFEST_PATH } from "../../src/archive/manifest.ts";
import { readArchive } from "../../src/archive/read-archive.ts";
import { writeArchive, type ArchiveSource, type WrittenArchive } from "../../src/archive/write-archive.ts";
import { entryDataOffset, sha256Hex, unzipAll } from "../support/archives.ts";
import { jsonRows } from "../support/sample-data.ts";

const MiB = 1024 * 1024;

function source(path: string, bytes: Uint8Array): ArchiveSource {
  return { path, size: bytes.length, lastModified: new Date(2024, 4, 6, 7, 8, 10), open: async () => new Blob([bytes as BlobPart]).stream() };
}

/** A database of five 1 MiB blocks and a bit, a small text file (one last block) and a photo (stored). */
function dataSet(database = jsonRows(5 * MiB + 1000, 1)) {
  return { database, notes: jsonRows(40_000, 2), photo: crypto.getRandomValues(new Uint8Array(50_000)) };
}

async function write(set: ReturnType<typeof dataSet>, reuse?: { archive: Uint8Array; written: WrittenArchive }) {
  const chunks: Uint8Array[] = [];
  const written = await writeArchive(
    [source("data.db", set.database), source("storage/notes.txt", set.notes), source("storage/photo.jpg", set.photo)],
    new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
    { producer: "test", indexBlocks: true, ...(reuse ? { reuse: new ReusablePieces(indexOf(reuse.written), reader(reuse.archive)) } : {}) },
  );
  return { archive: new Uint8Array(Buffer.concat(chunks)), written };
}

const reader = (zip: Uint8Array) => ({ size: zip.length, read: async (o: number, l: number) => zip.slice(o, o + l) });

function indexOf(written: WrittenArchive): BlockIndex {
  return { format: BLOCK_INDEX_FORMAT, key: "earlier.zip", archiveSize: written.size, archiveSha256: written.sha256, level: 2, pieces: written.pieces! };
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
    expect(first.written.pieces).toHaveLength(5 * 22 + 1 + 2);
    const second = await write(set, first);
    // Only the manifest (its creation time differs) is deflated again.
    expect(second.written.reuse.reusedBytes).toBe(deflatable);
    expect(second.written.reuse.deflatedBytes).toBe(first.written.reuse.deflatedBytes - deflatable);
    const manifestAt = entryDataOffset(first.archive, MANIFEST_PATH);
    expect(entryDataOffset(second.archive, MANIFEST_PATH)).toBe(manifestAt);
    expect(Buffer.from(second.archive.subarray(0, manifestAt)).equals(Buffer.from(first.archive.subarray(0, manifestAt)))).toBe(true);
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

  test("a piece that ended its stream is only offered for an entry's last piece", async () => {
    const piece = new Uint8Array([1, 2, 3, 4]);
    const index: BlockIndex = { format: 1, key: "a.zip", archiveSize: 4, archiveSha256: "a".repeat(64), level: 2, pieces: [["b".repeat(64), true, 0, 4, Number(Bun.hash.crc32(piece))]] };
    const blocks = new ReusablePieces(index, reader(piece));
    expect(blocks.keys()).toEqual([reuseKey("b".repeat(64), true)]);
    expect(reuseKey("b".repeat(64), false)).not.toBe(reuseKey("b".repeat(64), true));
    expect(await blocks.read([0])).toEqual([{ data: piece, crc32: index.pieces[0]![4] }]);
  });

  test("a block with a piece that no longer reads back as indexed (CRC-32, or past the end) is deflated whole instead", async () => {
    const set = dataSet();
    const first = await write(set);
    const damaged = first.archive.slice();
    const index = indexOf(first.written);
    const [, , offset, length] = index.pieces[1]!; // in data.db's first block
    damaged[offset + Math.floor(length / 2)]! ^= 0xff;
    const moved = index.pieces[30]!; // in its second block
    index.pieces[30] = [moved[0], moved[1], damaged.length - 10, 5000, moved[4]];
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
      pieces: [10, 10].map((length) => ({ inputLength: 50, length, sha256: "c".repeat(64), reused: false })),
    });
    builder.add(block(0));
    expect(builder.pieces()).toHaveLength(2);
    builder.add(block(20));
    builder.add(block(40));
    expect(builder.pieces()).toBeUndefined();
    expect(full).toBe(1);
    expect(builder.counts).toEqual({ deflatedBytes: 300, reusedBytes: 0 });
  });

  test("an index is parsed strictly: anything malformed is no index at all", () => {
    const good = { format: 1, key: "a.zip", archiveSize: 10, archiveSha256: "a".repeat(64), level: 2, pieces: [["b".repeat(64), false, 0, 5, 7]] };
    expect(parseBlockIndex(JSON.stringify(good))).toEqual(good as BlockIndex);
    for (const bad of [
      "not json",
      JSON.stringify({ ...good, format: 2 }),
      JSON.stringify({ ...good, pieces: [["b".repeat(63), false, 0, 5, 7]] }),
      JSON.stringify({ ...good, pieces: [["b".repeat(64), false, -1, 5, 7]] }),
      JSON.stringify({ ...good, archiveSha256: undefined }),
    ]) {
      expect(parseBlockIndex(bad)).toBeUndefined();
    }
  });
});
