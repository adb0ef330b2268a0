import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { InvalidBackupError } from "../errors.ts";

const inflateRaw = promisify(zlib.inflateRaw) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>;

/**
 * Where an entry's deflate stream can be cut: our writer deflates each block of `blockSize` input bytes on its
 * own (no shared window) and ends it on a byte boundary, and the manifest lists each block's compressed size.
 */
export interface DeflateBlocks {
  blockSize: number;
  compressedSizes: number[];
}

/** Blocks inflating at once: enough to keep two cores busy beside the rest of a restore, few enough to stay small. */
const IN_FLIGHT = 4;
/** Compressed bytes read from the source at a time (whole blocks, so none needs copying together). */
const READ_SIZE = 4 * 1024 * 1024;
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

/**
 * Inflates an entry's independently deflated blocks several at a time on node:zlib's thread pool and yields
 * their output in order. `read` gives the entry's compressed bytes at an offset from its start.
 *
 * Why: one deflate stream inflates on one core, and `data.db`, the largest entry, set the pace of a restore.
 * The bench's 500 MB one inflates in 0.63–0.70 s as one stream, 0.41–0.49 s as blocks on two cores, and more
 * cores go further (README "Performance").
 */
export async function* inflateBlocks(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  blocks: DeflateBlocks,
  size: number,
  name: string,
): AsyncGenerator<Uint8Array> {
  const { blockSize, compressedSizes } = blocks;
  const expectedLength = (i: number) => (i < compressedSizes.length - 1 ? blockSize : size - blockSize * i);
  const inflating: Promise<Buffer>[] = [];
  const pieces = compressedPieces(read, compressedSizes, name);
  let next = 0;
  try {
    for (;;) {
      while (inflating.length < IN_FLIGHT) {
        const piece = await pieces.next();
        if (piece.done) break;
        // Every block but the last ends with a sync flush, not a final block: inflated up to there, not to an end.
        // chunkSize: the whole block in one output buffer; with the default 16 KiB ones inflating took 2.5× the CPU.
        const inflated = inflateRaw(piece.value, {
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
          chunkSize: Math.max(blockSize, 64),
          maxOutputLength: Math.max(blockSize, 1),
        });
        inflated.catch(() => {}); // awaited in order below
        inflating.push(inflated);
      }
      const oldest = inflating.shift();
      if (!oldest) return;
      let output: Buffer;
      try {
        output = await oldest;
      } catch {
        throw new InvalidBackupError(`The entry ${name} is corrupt: its block ${next + 1} does not inflate.`);
      }
      if (output.length !== expectedLength(next)) {
        throw new InvalidBackupError(`The entry ${name} is corrupt: its block ${next + 1} inflates to the wrong length.`);
      }
      next++;
      yield output;
    }
  } finally {
    await pieces.return(undefined);
  }
}

/** The compressed blocks, read in big pieces of whole blocks and handed out as views. */
async function* compressedPieces(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  sizes: number[],
  name: string,
): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; i < sizes.length;) {
    let end = i;
    let length = 0;
    while (end < sizes.length && (length === 0 || length + sizes[end]! <= READ_SIZE)) length += sizes[end++]!;
    const bytes = await read(at, length);
    if (bytes.length !== length) throw new InvalidBackupError(`The entry ${name} cannot be read: the archive is truncated.`);
    let offset = 0;
    for (; i < end; i++) {
      yield bytes.subarray(offset, offset + sizes[i]!);
      offset += sizes[i]!;
    }
    at += length;
  }
}
