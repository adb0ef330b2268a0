import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { constants, inflateRawSync } from "node:zlib";
import {
  type BlockInflater,
  fitsEntry,
  inflateBlocks,
  InflateWorkers,
  openBlockDeflater,
  parallelDeflaters,
  READ_SIZE,
  ReadBuffers,
  zlibBlockInflater,
} from "../../../src/archive/engine/index.ts";
import { MANIFEST_FORMAT, MANIFEST_PATH, readArchive, writeArchive } from "../../../src/archive/index.ts";
import { type DeflateBlocks, ZipStreamWriter } from "../../../src/archive/zip/index.ts";
import { InvalidBackupError } from "../../../src/errors.ts";
import { jsonRows } from "../../support/sample-data.ts";
import { entryName, parseZip } from "../../support/zip-model.ts";

const MiB = 1024 * 1024;
/** Compressible, and varied enough that a block leaning on the one before would show it. */
const dbBytes = new TextEncoder().encode(
  Array.from({ length: 120_000 }, (_, i) => `row ${i} ${(i * 7919) % 10007} ${"lorem ipsum ".repeat(i % 5)}\n`).join(""),
);
const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const concat = (chunks: Uint8Array[]) => new Uint8Array(Buffer.concat(chunks));
const reader = (zip: Uint8Array) => ({ size: zip.length, read: async (o: number, l: number) => zip.slice(o, o + l) });

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return concat(chunks);
}

/** Zips `data.db` with our writer; `manifestBlocks` replaces the block list the manifest gets. */
async function zipWithManifest(manifestBlocks?: (real: DeflateBlocks) => unknown): Promise<{ zip: Uint8Array; blocks: DeflateBlocks; data: Uint8Array }> {
  const chunks: Uint8Array[] = [];
  // The deflater writeArchive uses (libdeflate workers under Bun), so the blocks match the ones it lists.
  const deflater = openBlockDeflater();
  const zip = new ZipStreamWriter(async (data) => void chunks.push(data.slice()), { deflater: parallelDeflaters({ deflate: deflater.deflate }) });
  const added = await zip.addEntry("data.db", (async function* () { yield dbBytes; })(), { level: 2, lastModified: new Date(), sizeHint: dbBytes.length });
  const blocks = await added.blocks!;
  const manifest = {
    format: MANIFEST_FORMAT,
    createdAt: new Date().toISOString(),
    producer: "test",
    entries: [{ path: "data.db", size: dbBytes.length, sha256: sha(dbBytes), deflateBlocks: manifestBlocks ? manifestBlocks(blocks) : blocks }],
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  await zip.addEntry(MANIFEST_PATH, (async function* () { yield manifestBytes; })(), { level: 2, lastModified: new Date(), sizeHint: manifestBytes.length });
  await zip.close();
  deflater.close();
  const bytes = concat(chunks);
  // data.db is the first entry: its data starts after the local header (30 bytes and the name).
  const start = 30 + "data.db".length;
  const compressed = blocks.compressedSizes.reduce((a, b) => a + b, 0);
  return { zip: bytes, blocks, data: bytes.subarray(start, start + compressed) };
}

async function extractDb(zip: Uint8Array): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await readArchive(reader(zip), { sink: async () => new WritableStream({ write: (c) => void chunks.push(c.slice()) }) });
  return concat(chunks);
}

describe("entries deflated in independent blocks", () => {
  test("the manifest lists a large entry's blocks, and each block inflates on its own", async () => {
    expect(dbBytes.length).toBeGreaterThan(4 * MiB);
    const output: Uint8Array[] = [];
    const written = await writeArchive(
      [{ path: "data.db", size: dbBytes.length, lastModified: new Date(), open: async () => new Blob([dbBytes]).stream() }],
      new WritableStream({ write: (c) => void output.push(c.slice()) }),
      { producer: "test" },
    );
    const blocks = written.manifest.entries[0]!.deflateBlocks!;
    expect(blocks.blockSize).toBe(MiB);
    expect(blocks.compressedSizes.length).toBe(Math.floor(dbBytes.length / MiB) + 1);
    // The blocks of the archive written, read by the tests' own zip parser: re-deflating the same bytes elsewhere
    // (another deflater picked under load) need not give the same blocks.
    const data = parseZip(concat(output))!.find((e) => entryName(e) === "data.db")!.data;
    expect(blocks.compressedSizes.reduce((a, b) => a + b, 0)).toBe(data.length);
    // No block refers back into the one before: inflated alone, each gives exactly its share of the input.
    let at = 0;
    blocks.compressedSizes.forEach((size, i) => {
      const inflated = inflateRawSync(data.subarray(at, at + size), { finishFlush: constants.Z_SYNC_FLUSH });
      expect(Buffer.from(inflated).equals(Buffer.from(dbBytes.subarray(i * MiB, (i + 1) * MiB)))).toBe(true);
      at += size;
    });
  });

  test("inflateBlocks gives the entry back in order, and a small entry lists no blocks", async () => {
    const { blocks, data } = await zipWithManifest();
    const out = await collect(inflateBlocks(async (o, l) => data.slice(o, o + l), blocks, dbBytes.length, "data.db"));
    expect(sha(out)).toBe(sha(dbBytes));
    const small = new Uint8Array(1000).fill(7);
    const written = await writeArchive(
      [{ path: "data.db", size: small.length, lastModified: new Date(), open: async () => new Blob([small]).stream() }],
      new WritableStream(),
      { producer: "test" },
    );
    expect(written.manifest.entries[0]!.deflateBlocks).toBeUndefined();
  });

  test("a block list that adds up but cuts in the wrong place fails the entry as corrupt, naming the block", async () => {
    const shifted = ({ blockSize, compressedSizes: [first, second, ...rest] }: DeflateBlocks) => ({
      blockSize,
      compressedSizes: [first! + 7, second! - 7, ...rest],
    });
    const { zip } = await zipWithManifest(shifted);
    const error = await extractDb(zip).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidBackupError);
    expect(error.message).toMatch(/^The entry data\.db is corrupt: its block [12] (does not inflate|inflates to the wrong length)\.$/);
  });

  test("a block list that does not fit the entry is not used: the entry inflates whole", async () => {
    const misfits: ((real: DeflateBlocks) => DeflateBlocks)[] = [
      (b) => ({ ...b, compressedSizes: [...b.compressedSizes.slice(0, -1), b.compressedSizes.at(-1)! + 1] }), // sum off by one
      (b) => ({ ...b, compressedSizes: b.compressedSizes.slice(1) }), // a block missing
      (b) => ({ ...b, blockSize: 64 * MiB }), // larger than a block may be
      (b) => ({ ...b, blockSize: b.blockSize * 2 }), // the wrong count for the size
    ];
    for (const misfit of misfits) {
      const { zip, blocks, data } = await zipWithManifest(misfit);
      expect(fitsEntry(misfit(blocks), dbBytes.length, data.length)).toBe(false);
      expect(sha(await extractDb(zip))).toBe(sha(dbBytes));
    }
  });

  test("a block may not inflate past its size: a hostile list cannot make one block a bomb", async () => {
    const zeros = new Uint8Array(8 * MiB);
    const chunks: Uint8Array[] = [];
    const zip = new ZipStreamWriter(async (data) => void chunks.push(data.slice()), { deflater: parallelDeflaters() });
    const added = await zip.addEntry("x", (async function* () { yield zeros; })(), { level: 2, lastModified: new Date(), sizeHint: zeros.length });
    const real = await added.blocks!;
    await zip.close();
    // A list that claims 1 KiB blocks where the writer made 1 MiB ones: inflating stops at 1 KiB and fails.
    const data = concat(chunks).subarray(31, 31 + real.compressedSizes.reduce((a, b) => a + b, 0));
    const lying = { blockSize: 1024, compressedSizes: [real.compressedSizes[0]!] };
    const error = await collect(inflateBlocks(async (o, l) => data.slice(o, o + l), lying, 1024, "x")).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidBackupError);
    expect(error.message).toBe("The entry x is corrupt: its block 1 does not inflate.");
  });

  test("compressed reads go into the inflater's read buffers, read into again once their blocks inflate: a few serve a 40 MiB entry, every byte right", async () => {
    // Random bytes: about 40 MiB compressed too, ten 4 MiB reads.
    const data = new Uint8Array(40 * MiB);
    for (let at = 0; at < data.length; at += 65536) crypto.getRandomValues(data.subarray(at, at + 65536));
    const output: Uint8Array[] = [];
    const written = await writeArchive(
      [{ path: "data.db", size: data.length, lastModified: new Date(), open: async () => new Blob([data as Uint8Array<ArrayBuffer>]).stream() }],
      new WritableStream({ write: (c) => void output.push(c.slice()) }),
      { producer: "test" },
    );
    const blocks = written.manifest.entries[0]!.deflateBlocks!;
    const compressed = parseZip(concat(output))!.find((e) => entryName(e) === "data.db")!.data;
    // The real workers, and an inflater that only reads a block's compressed bytes some turns after it is given
    // them (as node:zlib's pool may): memory read into again any earlier would show as a corrupt block.
    const turns = async (n: number) => {
      for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    const late: BlockInflater = {
      maxBlockBytes: 16 * MiB,
      readBuffers: new ReadBuffers(READ_SIZE, 4),
      inflate: async (bytes, size) => (await turns(20), zlibBlockInflater.inflate(bytes, size)),
    };
    const workers = new InflateWorkers(2);
    try {
      for (const inflater of [workers, late]) {
        const buffers = new Set<ArrayBufferLike>();
        let reads = 0;
        const read = async (offset: number, length: number, into?: Uint8Array) => {
          reads++;
          if (!into) return compressed.slice(offset, offset + length);
          buffers.add(into.buffer);
          // Filled a turn later, as a disk read is: blocks of the buffer before are inflating meanwhile.
          await turns(1);
          into.set(compressed.subarray(offset, offset + length));
          return into.subarray(0, length);
        };
        const hash = createHash("sha256");
        for await (const chunk of inflateBlocks(read, blocks, data.length, "data.db", inflater)) hash.update(chunk); // lent: used at once
        expect(hash.digest("hex")).toBe(sha(data));
        expect(reads).toBeGreaterThanOrEqual(10);
        expect(buffers.size).toBeGreaterThan(0);
        expect(buffers.size).toBeLessThanOrEqual(6);
      }
    } finally {
      workers.close();
    }
  });

  test("a restore's blocks inflate into memory lent chunk by chunk: a sink slower than the inflating still gets every byte", async () => {
    // More blocks than the inflate workers have slots (15), so slots are lent again while the entry is written.
    const data = jsonRows(24 * MiB, 9);
    const output: Uint8Array[] = [];
    const written = await writeArchive(
      [{ path: "data.db", size: data.length, lastModified: new Date(), open: async () => new Blob([data as Uint8Array<ArrayBuffer>]).stream() }],
      new WritableStream({ write: (c) => void output.push(c.slice()) }),
      { producer: "test" },
    );
    expect(written.manifest.entries[0]!.deflateBlocks!.compressedSizes.length).toBe(25);
    const extracted: Uint8Array[] = [];
    // A write that finishes a turn of the event loop later, as a disk does: a chunk given back before its write
    // was done would be overwritten by a later block by then.
    const slowSink = async () => new WritableStream<Uint8Array>({
      write: (chunk) => new Promise<void>((resolve) => setImmediate(() => resolve(void extracted.push(chunk.slice())))),
    });
    await readArchive(reader(concat(output)), { sink: slowSink });
    expect(sha(concat(extracted))).toBe(sha(data));
  });
});
