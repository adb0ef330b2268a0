import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { spliceInPlace } from "./deflate-splice.ts";

/**
 * Deflates one block of an entry on its own (no window shared with the block before), as a raw deflate piece
 * that the next block's piece may follow: every block but the `last` ends on a byte boundary without a final
 * block. Concatenated in order, the pieces are one valid deflate stream.
 */
export type DeflateBlock = (block: Uint8Array, last: boolean, level: number) => Promise<Uint8Array>;

const deflateRaw = promisify(zlib.deflateRaw) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>;

/** Output in 256 KiB pieces rather than the default 16 KiB: 10% less CPU for the same bytes (measured). */
const OUTPUT_CHUNK = 256 * 1024;

function zlibOptions(last: boolean, level: number): zlib.ZlibOptions {
  return { level, chunkSize: OUTPUT_CHUNK, ...(last ? {} : { finishFlush: zlib.constants.Z_SYNC_FLUSH }) };
}

/** A block deflated by zlib on node:zlib's thread pool, ending with a sync flush (pigz's trick). Any runtime. */
export const zlibDeflateBlock: DeflateBlock = (block, last, level) => deflateRaw(block, zlibOptions(last, level));

/** Levels at and below this one use libdeflate's fastest level where the runtime has it. */
export const FAST_LEVEL = 2;

/**
 * Input bytes per libdeflate call, at most. libdeflate's fastest level writes one block for up to 65535 bytes
 * unless the block fills its 8192 matches first, which the bench's text files did in most 64 KiB pieces and in
 * none of 48 KiB. One block per piece is what `spliceInPlace` needs.
 */
const PIECE_LIMIT = 48 * 1024;

/**
 * What a deflate worker does with a block: libdeflate in pieces at the fast levels, zlib in one call above them
 * (libdeflate's higher levels write several blocks per piece, which `spliceInPlace` cannot join).
 */
export function deflateBlockSync(block: Uint8Array, last: boolean, level: number, libdeflate: (piece: Uint8Array) => Uint8Array): Uint8Array {
  return level <= FAST_LEVEL ? deflateBlockInPieces(block, last, libdeflate) : zlib.deflateRawSync(block, zlibOptions(last, level));
}

/**
 * Deflates `block` with `libdeflate` (a whole-stream compressor, fastest level) in pieces of at most 48 KiB,
 * each spliced to the next (`deflate-splice.ts`). A piece that cannot be spliced (rare: a block full of
 * matches, or fixed codes) is deflated by zlib with a sync flush instead.
 *
 * Why: on the bench's data this is about 1.1× faster than zlib level 2 at the same size, single-threaded, and
 * the archive is written 5–8% sooner (README "Performance"). Each piece starting without a window costs about
 * what libdeflate's better matching gains.
 */
export function deflateBlockInPieces(block: Uint8Array, last: boolean, libdeflate: (piece: Uint8Array) => Uint8Array): Uint8Array {
  const count = Math.max(1, Math.ceil(block.length / PIECE_LIMIT));
  const pieceSize = Math.ceil(block.length / count);
  const parts: (Uint8Array | readonly number[])[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const piece = block.subarray(i * pieceSize, (i + 1) * pieceSize);
    const whole = libdeflate(piece);
    if (last && i === count - 1) {
      parts.push(whole);
      total += whole.length;
      continue;
    }
    const tail = spliceInPlace(whole);
    const spliced = tail ? [whole, tail] : [zlib.deflateRawSync(piece, zlibOptions(false, FAST_LEVEL))];
    for (const part of spliced) {
      parts.push(part);
      total += part.length;
    }
  }
  if (parts.length === 1) return parts[0] as Uint8Array;
  const joined = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}
