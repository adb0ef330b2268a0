import type { DeflateBlocks } from "./block-inflate.ts";
import type { BlockBuffer, DeflateBlock, DeflatedBlock } from "./deflate-block.ts";
import { OrderedOutput } from "./ordered-output.ts";
import { ParallelDeflater } from "./parallel-deflate-stream.ts";
import { crc32 } from "./runtime.ts";

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL = 0x06054b50;
const ZIP64_END_OF_CENTRAL = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
/** Bit 3: sizes and CRC follow the data; bit 11: names are UTF-8. */
const FLAGS = 0x0808;
const MAX32 = 0xffffffff;
/** Entries expected to reach this size get zip64 fields from their local header on. */
const ZIP64_THRESHOLD = 0xffff0000;

export interface ZipEntryOptions {
  /** 0 stores the entry; 1–9 deflates it at that level. */
  level: number;
  lastModified: Date;
  /** The expected uncompressed size, to decide on zip64 before the data is written. */
  sizeHint: number;
}

/**
 * Input bytes that may wait in pending blocks and chunks: 4 blocks of 1 MiB in flight keep both cores busy while
 * three threads (this one and two deflating) share them. With zlib on the thread pool each pending block cost
 * about 10× its size in zlib state, and 3 MiB was the choice; with libdeflate workers a block costs its copy,
 * and 4 MiB was 4–7% faster than 3 for about 5 MB more at peak (6 MiB: no faster than 4, 10 MB more; README
 * "Performance").
 */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** What `addEntry` learned about an entry once all of it is read. */
export interface AddedEntry {
  /** Uncompressed size. */
  size: number;
  /** For a deflated entry, its blocks, known once the last one is deflated (`close` waits for them too). */
  blocks?: Promise<DeflateBlocks>;
}

/** A deflated block as it reaches the output, for a writer that indexes its blocks (`block-reuse.ts`). */
export interface WrittenBlock extends DeflatedBlock {
  last: boolean;
  inputLength: number;
  /** Where the block starts in the archive. */
  offset: number;
}

export interface ZipStreamWriterOptions {
  /** Where blocks are deflated (`ParallelDeflater`'s default unless given). */
  deflate?: DeflateBlock;
  /** Where blocks are filled (`ParallelDeflateOptions.blockBuffer`). */
  blockBuffer?: BlockBuffer;
  /** Told about every deflated block once it is written, in archive order. */
  onBlockWritten?: (block: WrittenBlock) => void;
}

interface CentralRecord {
  name: Uint8Array;
  method: number;
  dosTime: number;
  dosDate: number;
  crc: number;
  compressed: number;
  uncompressed: number;
  offset: number;
  zip64: boolean;
}

/**
 * A minimal streaming zip writer: entries one after another, each with a data descriptor (so nothing is
 * buffered or seeked), zip64 records where sizes or offsets need them, then the central directory.
 *
 * Why not zip.js's ZipWriter: on the bench data it spent twice as long as the deflate itself in stream
 * plumbing and JavaScript CRC (PERF-NOTES; README "Performance"). Here each chunk is hashed with the
 * native CRC-32 and handed to `ParallelDeflater` or queued as is. Output goes through one `OrderedOutput`
 * for the whole archive, so the next entries are read while earlier blocks still deflate.
 */
export class ZipStreamWriter {
  readonly #output: OrderedOutput;
  readonly #central: CentralRecord[] = [];
  readonly #deflate: DeflateBlock | undefined;
  readonly #blockBuffer: BlockBuffer | undefined;
  readonly #onBlockWritten: ((block: WrittenBlock) => void) | undefined;

  /** `write` must apply backpressure (resolve when the bytes may be followed by more). */
  constructor(write: (data: Uint8Array) => Promise<void>, options: ZipStreamWriterOptions = {}) {
    this.#output = new OrderedOutput(write, MAX_PENDING_BYTES);
    this.#deflate = options.deflate;
    this.#blockBuffer = options.blockBuffer;
    this.#onBlockWritten = options.onBlockWritten;
  }

  /**
   * Reads one entry from `chunks` and queues it; resolves once all of it is read (its last blocks may still be
   * deflating: `close` waits for them). Each chunk is copied before the next is asked for, so the source may
   * reuse its memory.
   */
  async addEntry(path: string, chunks: AsyncIterable<Uint8Array>, options: ZipEntryOptions): Promise<AddedEntry> {
    const name = new TextEncoder().encode(path);
    const method = options.level > 0 ? 8 : 0;
    const { dosTime, dosDate } = toDos(options.lastModified);
    const zip64 = options.sizeHint >= ZIP64_THRESHOLD;
    const record: CentralRecord = { name, method, dosTime, dosDate, crc: 0, compressed: 0, uncompressed: 0, offset: 0, zip64 };
    await this.#output.push(localHeader(record), 0, (offset) => {
      record.offset = offset;
    });

    // Sizes only: keeping the blocks themselves until the entry ends would hold its whole compressed output.
    const blockSizes: Promise<number>[] = [];
    let storedBytes = 0;
    let crc = 0;
    let uncompressed = 0;
    let blockSize = 0;
    if (method === 8) {
      const onBlockWritten = this.#onBlockWritten;
      const deflater = new ParallelDeflater((block, inputBytes, last) => {
        let deflated: DeflatedBlock | undefined;
        const data = block.then((b) => (deflated = b).data);
        const size = data.then((d) => d.length);
        size.catch(() => {}); // a failure surfaces through the output queue
        blockSizes.push(size);
        // The offset is known when the block's turn comes, by which time it has been deflated.
        return this.#output.push(data, inputBytes, onBlockWritten && ((offset) => onBlockWritten({ ...deflated!, last, offset, inputLength: inputBytes })));
      }, { level: options.level, ...(this.#deflate ? { deflate: this.#deflate } : {}), ...(this.#blockBuffer ? { blockBuffer: this.#blockBuffer } : {}) });
      blockSize = deflater.blockSize;
      for await (const chunk of chunks) {
        crc = crc32(chunk, crc);
        uncompressed += chunk.length;
        await deflater.write(chunk);
      }
      await deflater.end();
    } else {
      for await (const chunk of chunks) {
        crc = crc32(chunk, crc);
        uncompressed += chunk.length;
        storedBytes += chunk.length;
        // A copy: the source may read its next chunk into this one's memory (`ArchiveSource`).
        await this.#output.push(new Uint8Array(chunk), chunk.length);
      }
    }
    // The descriptor needs the compressed size, known once the entry's last block is deflated.
    const compressedSizes = Promise.all(blockSizes);
    const descriptor = compressedSizes.then((sizes) => {
      const compressed = sizes.reduce((sum, size) => sum + size, storedBytes);
      if (!zip64 && (uncompressed >= MAX32 || compressed >= MAX32)) {
        throw new Error(`The entry ${path} grew past 4 GiB beyond its announced size.`);
      }
      Object.assign(record, { crc: crc >>> 0, compressed, uncompressed });
      return dataDescriptor(record);
    });
    await this.#output.push(descriptor, 0);
    this.#central.push(record);
    if (method !== 8) return { size: uncompressed };
    const blocks = compressedSizes.then((sizes) => ({ blockSize, compressedSizes: sizes }));
    blocks.catch(() => {}); // a failure surfaces through the output queue
    return { size: uncompressed, blocks };
  }

  /** Writes the central directory and the end records. */
  async close(): Promise<void> {
    await this.#output.drain();
    const cdStart = this.#output.offset;
    for (const entry of this.#central) {
      const big = [entry.uncompressed >= MAX32, entry.compressed >= MAX32, entry.offset >= MAX32];
      const extraLength = big.some(Boolean) ? 4 + 8 * big.filter(Boolean).length : 0;
      const record = new Uint8Array(46 + entry.name.length + extraLength);
      const r = new DataView(record.buffer);
      const needs64 = entry.zip64 || extraLength > 0;
      r.setUint32(0, CENTRAL_HEADER, true);
      r.setUint16(4, (3 << 8) | 45, true); // made by Unix, spec 4.5
      r.setUint16(6, needs64 ? 45 : 20, true);
      r.setUint16(8, FLAGS, true);
      r.setUint16(10, entry.method, true);
      r.setUint16(12, entry.dosTime, true);
      r.setUint16(14, entry.dosDate, true);
      r.setUint32(16, entry.crc, true);
      r.setUint32(20, big[1] ? MAX32 : entry.compressed, true);
      r.setUint32(24, big[0] ? MAX32 : entry.uncompressed, true);
      r.setUint16(28, entry.name.length, true);
      r.setUint16(30, extraLength, true);
      r.setUint32(38, (0o100644 << 16) >>> 0, true); // a regular file, rw-r--r--
      r.setUint32(42, big[2] ? MAX32 : entry.offset, true);
      record.set(entry.name, 46);
      if (extraLength) {
        let at = 46 + entry.name.length;
        r.setUint16(at, 1, true);
        r.setUint16(at + 2, extraLength - 4, true);
        at += 4;
        for (const [i, value] of [entry.uncompressed, entry.compressed, entry.offset].entries()) {
          if (!big[i]) continue;
          r.setBigUint64(at, BigInt(value), true);
          at += 8;
        }
      }
      await this.#output.push(record, 0);
    }
    await this.#output.drain();
    const cdSize = this.#output.offset - cdStart;
    const count = this.#central.length;
    if (count >= 0xffff || cdStart >= MAX32 || cdSize >= MAX32) {
      const zip64End = this.#output.offset;
      const record = new Uint8Array(56 + 20);
      const r = new DataView(record.buffer);
      r.setUint32(0, ZIP64_END_OF_CENTRAL, true);
      r.setBigUint64(4, 44n, true);
      r.setUint16(12, (3 << 8) | 45, true);
      r.setUint16(14, 45, true);
      r.setBigUint64(24, BigInt(count), true);
      r.setBigUint64(32, BigInt(count), true);
      r.setBigUint64(40, BigInt(cdSize), true);
      r.setBigUint64(48, BigInt(cdStart), true);
      r.setUint32(56, ZIP64_LOCATOR, true);
      r.setBigUint64(64, BigInt(zip64End), true);
      r.setUint32(72, 1, true);
      await this.#output.push(record, 0);
    }
    const end = new Uint8Array(22);
    const e = new DataView(end.buffer);
    e.setUint32(0, END_OF_CENTRAL, true);
    e.setUint16(8, Math.min(count, 0xffff), true);
    e.setUint16(10, Math.min(count, 0xffff), true);
    e.setUint32(12, Math.min(cdSize, MAX32), true);
    e.setUint32(16, Math.min(cdStart, MAX32), true);
    await this.#output.push(end, 0);
    await this.#output.drain();
  }
}

/** The local header: CRC and sizes stay 0 (0xffffffff with zip64, whose extra field holds them), the data descriptor has them. */
function localHeader({ name, method, dosTime, dosDate, zip64 }: CentralRecord): Uint8Array {
  const extra = zip64 ? new Uint8Array(20) : new Uint8Array(0);
  if (zip64) {
    const view = new DataView(extra.buffer);
    view.setUint16(0, 1, true);
    view.setUint16(2, 16, true);
  }
  const header = new Uint8Array(30 + name.length + extra.length);
  const h = new DataView(header.buffer);
  h.setUint32(0, LOCAL_HEADER, true);
  h.setUint16(4, zip64 ? 45 : 20, true);
  h.setUint16(6, FLAGS, true);
  h.setUint16(8, method, true);
  h.setUint16(10, dosTime, true);
  h.setUint16(12, dosDate, true);
  if (zip64) {
    h.setUint32(18, MAX32, true);
    h.setUint32(22, MAX32, true);
  }
  h.setUint16(26, name.length, true);
  h.setUint16(28, extra.length, true);
  header.set(name, 30);
  header.set(extra, 30 + name.length);
  return header;
}

function dataDescriptor({ crc, compressed, uncompressed, zip64 }: CentralRecord): Uint8Array {
  const descriptor = new Uint8Array(zip64 ? 24 : 16);
  const d = new DataView(descriptor.buffer);
  d.setUint32(0, DATA_DESCRIPTOR, true);
  d.setUint32(4, crc, true);
  if (zip64) {
    d.setBigUint64(8, BigInt(compressed), true);
    d.setBigUint64(16, BigInt(uncompressed), true);
  } else {
    d.setUint32(8, compressed, true);
    d.setUint32(12, uncompressed, true);
  }
  return descriptor;
}

/** MS-DOS date and time fields, in local time as zip tools expect (2-second resolution, 1980 onwards). */
function toDos(date: Date): { dosTime: number; dosDate: number } {
  const d = Number.isNaN(date.getTime()) || date.getFullYear() < 1980 ? new Date(1980, 0, 1) : date;
  return {
    dosTime: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    dosDate: ((Math.min(d.getFullYear(), 2107) - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}
