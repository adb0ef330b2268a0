/**
 * Inflating an entry's independently deflated blocks several at a time (`inflateBlocks`), on node:zlib's thread
 * pool or any `BlockInflater` (the inflate workers), and the checks on a manifest's block list before it is used.
 */
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { InvalidBackupError } from "../../errors.ts";
import type { DeflateBlocks } from "../zip/index.ts";
import { readingAhead, type ReadRange } from "./read-ahead.ts";
import { HeldBuffer, type ReadBuffers } from "./read-buffers.ts";

/**
 * Reads `length` bytes at `offset`; a reader may read them into `into` (memory the caller leaves alone until the
 * read settles) and return a view of it, or return memory of its own.
 */
export type ReadInto = (offset: number, length: number, into?: Uint8Array) => Promise<Uint8Array>;

const inflateRaw = promisify(zlib.inflateRaw) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>;

/** Blocks inflating at once: enough to keep two cores busy beside the rest of a restore, few enough to stay small. */
const IN_FLIGHT = 4;
/** Compressed bytes read from the source at a time (whole blocks, so none needs copying together). */
export const READ_SIZE = 4 * 1024 * 1024;
/** Largest block size accepted from a manifest: a bound on what one block may hold in memory. */
const MAX_BLOCK_SIZE = 16 * 1024 * 1024;

/**
 * Whether `blocks` describes an entry of `size` bytes stored as `compressedSize` deflated ones. A plan that does
 * not add up is not used (`blockPlan` inflates the entry whole instead); one that adds up but cuts in the wrong
 * places fails the block's inflate or its length check.
 */
export function fitsEntry(blocks: DeflateBlocks, size: number, compressedSize: number): boolean {
  const { blockSize, compressedSizes } = blocks;
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE) return false;
  // Full blocks, then the final one with the rest (empty when the size is a multiple of the block size).
  if (compressedSizes.length !== Math.floor(size / blockSize) + 1) return false;
  // Deflate never grows a block by more than a few bytes per 16 KiB (stored blocks), plus the flush marker.
  const largest = blockSize + Math.ceil(blockSize / 1024) + 64;
  let sum = 0;
  for (const n of compressedSizes) {
    if (!Number.isInteger(n) || n < 1 || n > largest) return false;
    sum += n;
  }
  return sum === compressedSize;
}

/** Entries up to this size inflate in one call on the thread pool (output held whole: bounded by this). */
const SMALL_ENTRY = 8 * 1024 * 1024;

/**
 * How to inflate an entry on the thread pool: by the manifest's block list when it fits the entry, a small
 * entry as one block (one call, no stream machinery per file), otherwise not at all (`undefined`: the caller
 * streams it, one core's worth, as for a large entry of a PocketBase zip).
 */
export function blockPlan(listed: DeflateBlocks | undefined, size: number, compressedSize: number): DeflateBlocks | undefined {
  if (listed && fitsEntry(listed, size, compressedSize)) return listed;
  // One block larger than the entry: no full blocks, then the final one holding everything.
  const whole = { blockSize: size + 1, compressedSizes: [compressedSize] };
  return size <= SMALL_ENTRY && fitsEntry(whole, size, compressedSize) ? whole : undefined;
}

/** A block inflated into memory the inflater lends until `release` is called. */
export interface InflatedBlock {
  data: Uint8Array;
  release(): void;
}

/** The block's data is not valid deflate data, or does not inflate to exactly its size. */
export class CorruptBlockError extends Error {}

/** Where an entry's blocks inflate: node:zlib's thread pool (`zlibBlockInflater`), or worker threads. */
export interface BlockInflater {
  /** The largest block it takes; an entry with larger ones inflates on node:zlib's pool. */
  readonly maxBlockBytes: number;
  /**
   * Inflates `compressed` to exactly `size` bytes, rejecting with `CorruptBlockError` when it does not. Blocks
   * are given memory in the order they are asked for, waiting for blocks lent before them to be released.
   */
  inflate(compressed: Uint8Array, size: number): Promise<InflatedBlock>;
  /** Memory for the compressed reads of the entries it inflates (`read-buffers.ts`), where it keeps any. */
  readonly readBuffers?: ReadBuffers;
}

/**
 * node:zlib's options for a block of `size` bytes. Every block but an entry's last ends with a sync flush, not a
 * final block: inflated up to there, not to an end. chunkSize: the whole block in one output buffer; with the
 * default 16 KiB ones inflating took 2.5× the CPU. maxOutputLength: never more than the block's size.
 */
export function zlibBlockOptions(size: number): zlib.ZlibOptions {
  return { finishFlush: zlib.constants.Z_SYNC_FLUSH, chunkSize: Math.max(size, 64), maxOutputLength: Math.max(size, 1) };
}

/** Inflates on node:zlib's thread pool, each block into a buffer of its own (nothing to release). */
export const zlibBlockInflater: BlockInflater = {
  maxBlockBytes: MAX_BLOCK_SIZE,
  async inflate(compressed, size) {
    let output: Buffer;
    try {
      output = await inflateRaw(compressed, zlibBlockOptions(size));
    } catch (error) {
      throw new CorruptBlockError((error as Error).message);
    }
    if (output.length !== size) throw new CorruptBlockError(`The block inflates to ${output.length} bytes, not ${size}.`);
    return { data: output, release() {} };
  },
};

/**
 * Inflates an entry's independently deflated blocks several at a time on `inflater` (node:zlib's thread pool
 * unless told otherwise) and yields their output in order. `read` gives the entry's compressed bytes at an
 * offset from its start. Each chunk yielded is lent: it is valid until the next one is asked for.
 *
 * Why: one deflate stream inflates on one core, and `data.db`, the largest entry, set the pace of a restore.
 * The bench's 500 MB one inflates in 0.63–0.70 s as one stream, 0.41–0.49 s as blocks on two cores, and more
 * cores go further (README "Performance").
 */
export async function* inflateBlocks(
  read: ReadInto,
  blocks: DeflateBlocks,
  size: number,
  name: string,
  inflater: BlockInflater = zlibBlockInflater,
): AsyncGenerator<Uint8Array> {
  const { blockSize, compressedSizes } = blocks;
  const expectedLength = (i: number) => (i < compressedSizes.length - 1 ? blockSize : size - blockSize * i);
  const using = Math.min(blockSize, size) <= inflater.maxBlockBytes ? inflater : zlibBlockInflater;
  const inflating: Promise<InflatedBlock>[] = [];
  const pieces = compressedPieces(read, compressedSizes, name, inflater.readBuffers);
  let next = 0;
  /** The block last yielded, released when the next is asked for. */
  let lent: InflatedBlock | undefined;
  try {
    for (;;) {
      lent?.release();
      lent = undefined;
      // Asked for in order, and served in order (`SharedSlots`): the oldest block of every entry inflating gets its
      // memory before the entry's later ones, so no entry waits on memory held by its own unyielded blocks.
      while (inflating.length < IN_FLIGHT) {
        const piece = await pieces.next();
        if (piece.done) break;
        const block = using.inflate(piece.value.bytes, expectedLength(next + inflating.length));
        // Its compressed bytes are let go once it is inflated (or failed): their memory may be read into again.
        block.then(piece.value.letGo, piece.value.letGo);
        inflating.push(block);
      }
      const oldest = inflating.shift();
      if (!oldest) return;
      try {
        lent = await oldest;
      } catch (error) {
        if (error instanceof CorruptBlockError) throw new InvalidBackupError(`The entry ${name} is corrupt: its block ${next + 1} does not inflate.`);
        throw error;
      }
      next++;
      yield lent.data;
    }
  } finally {
    lent?.release();
    // Blocks still inflating (the entry failed, or its reader stopped) give their memory back once they are done.
    for (const block of inflating) block.then((done) => done.release(), () => {});
    await pieces.return(undefined);
  }
}

/**
 * The compressed blocks, read in big pieces of whole blocks, the next piece read ahead, and handed out as views,
 * each with the function that lets go of it once it is no longer needed. Pieces are read into `buffers` where
 * the reader takes them; a buffer is read into again once the reader is past it and every block in it let go.
 */
async function* compressedPieces(read: ReadInto, sizes: number[], name: string, buffers?: ReadBuffers): AsyncGenerator<{ bytes: Uint8Array; letGo: () => void }> {
  const intos = new Map<number, Uint8Array>();
  const reading = (offset: number, length: number) => {
    const into = buffers?.take(length);
    if (!into) return read(offset, length);
    intos.set(offset, into);
    return read(offset, length, into);
  };
  let i = 0;
  let held: HeldBuffer | undefined;
  try {
    for await (const { bytes, length, offset: readAt } of readingAhead(reading, wholeBlockReads(sizes))) {
      const into = intos.get(readAt);
      intos.delete(readAt);
      if (into && bytes.buffer === into.buffer) held = new HeldBuffer(buffers!, into);
      else if (into) buffers!.give(into); // the reader used memory of its own
      if (bytes.length !== length) throw new InvalidBackupError(`The entry ${name} cannot be read: the archive is truncated.`);
      for (let offset = 0; offset < length; i++) {
        yield { bytes: bytes.subarray(offset, offset + sizes[i]!), letGo: held ? held.hold() : () => {} };
        offset += sizes[i]!;
      }
      held?.letGo();
      held = undefined;
    }
  } finally {
    // Stopped inside a piece; one read ahead and never reached is left to the collector.
    held?.letGo();
  }
}

/** Reads of up to `READ_SIZE` bytes that hold whole blocks (at least one each). */
function* wholeBlockReads(sizes: number[]): Generator<ReadRange> {
  let offset = 0;
  for (let i = 0; i < sizes.length; ) {
    let length = 0;
    while (i < sizes.length && (length === 0 || length + sizes[i]! <= READ_SIZE)) length += sizes[i++]!;
    yield { offset, length };
    offset += length;
  }
}
