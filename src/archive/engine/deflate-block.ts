/**
 * Deflating one block of an entry on its own, so blocks deflate in parallel and concatenate: with zlib on the
 * thread pool (`zlibDeflateBlock`), or in pieces of at most 48 KiB on a deflate worker (`deflateBlockSync`),
 * each piece fingerprinted for reuse when asked. The types every block deflater shares are here too.
 */
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { concatBytes } from "./concat-bytes.ts";
import { spliceInPlace } from "./deflate-splice.ts";
import type { CompressedBlock } from "../zip/index.ts";
import { FINGERPRINT_BYTES } from "./piece-fingerprint.ts";
import { RING_VALID_BYTES } from "./piece-ring.ts";

/** One piece of a deflated block (`deflatePieces`): its input, its output, and its input's fingerprint. */
export interface BlockPiece {
  inputLength: number;
  length: number;
  /** The input's fingerprint (`piece-fingerprint.ts`). */
  fingerprint: Uint8Array;
  /** Copied from an earlier archive instead of deflated. */
  reused: boolean;
  /** The output's CRC-32, where already known (a reused piece's, from its index). */
  crc32?: number;
}

/** A block as a deflater hands it back (to the zip writer, a `CompressedBlock` with more to say). */
export interface DeflatedBlock extends CompressedBlock {
  /** The raw deflate data. */
  data: Uint8Array;
  /** Its pieces in order, from deflaters that fingerprint them (`block-reuse.ts`). */
  pieces?: BlockPiece[];
}

/**
 * Deflates one block of an entry on its own (no window shared with the block before), as a raw deflate piece
 * that the next block's piece may follow: every block but the `last` ends on a byte boundary without a final
 * block. Concatenated in order, the pieces are one valid deflate stream.
 */
export type DeflateBlock = (block: Uint8Array, last: boolean, level: number) => Promise<DeflatedBlock>;

/**
 * Memory of `size` bytes to fill a block in, that a `DeflateBlock` reads in place (`DeflateWorkers.blockBuffer`:
 * shared with its workers, so filling it is the only copy).
 */
export type BlockBuffer = (size: number) => Promise<Uint8Array>;

const deflateRaw = promisify(zlib.deflateRaw) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>;

/** Output in 256 KiB pieces rather than the default 16 KiB: 10% less CPU for the same bytes (measured). */
const OUTPUT_CHUNK = 256 * 1024;

function zlibOptions(last: boolean, level: number): zlib.ZlibOptions {
  return { level, chunkSize: OUTPUT_CHUNK, ...(last ? {} : { finishFlush: zlib.constants.Z_SYNC_FLUSH }) };
}

/** A block deflated by zlib on node:zlib's thread pool, ending with a sync flush (pigz's trick). Any runtime. */
export const zlibDeflateBlock: DeflateBlock = async (block, last, level) => ({ data: await deflateRaw(block, zlibOptions(last, level)) });

/** Levels at and below this one use libdeflate's fastest level where the runtime has it. */
export const FAST_LEVEL = 2;

/**
 * Input bytes per libdeflate call, at most. libdeflate's fastest level writes one block for up to 65535 bytes
 * unless the block fills its 8192 matches first, which the bench's text files did in most 64 KiB pieces and in
 * none of 48 KiB. One block per piece is what `spliceInPlace` needs.
 */
export const PIECE_LIMIT = 48 * 1024;

/** What a deflate worker may be asked to do beside deflating: fingerprint pieces, and skip the reusable ones. */
export interface PieceOptions {
  /** The fingerprint of a piece's input (`piece-fingerprint.ts`). */
  fingerprint?: (piece: Uint8Array) => Uint8Array;
  /**
   * The number of an earlier archive's piece with this input, if it has one. `last`: whether the piece ends its
   * entry (such a piece ends the deflate stream, the others do not, so the two never stand in for each other);
   * `inputLength`: the piece's input bytes.
   */
  reusable?: (fingerprint: Uint8Array, last: boolean, inputLength: number) => number | undefined;
  /**
   * Memory to write the block's output into, where it fits (a deflate worker's output slot, `deflate.worker.ts`):
   * `output` is then a view of it.
   */
  into?: Uint8Array;
}

/**
 * How a block's pieces were made. `pieces` lists them in order: a fresh one by its length (its bytes are next
 * in `output`), a reusable one by its number in the earlier archive's index.
 */
export interface PiecedBlock {
  /**
   * May be a view of the piece deflater's own memory (ISA-L's output ring, `isal-deflate.ts`), valid until it
   * deflates the next block: copy what is kept longer (`deflate.worker.ts` does, to post it).
   */
  output: Uint8Array;
  pieces: ({ inputLength: number; fresh: number } | { inputLength: number; reuse: number })[];
  /** Each piece's fingerprint in turn, `FINGERPRINT_BYTES` each, when fingerprinted. */
  fingerprints?: Uint8Array;
}

/**
 * How a deflate worker deflates one piece of a block at the fast levels: raw deflate data that another piece may
 * follow (ending on a byte boundary without a final block) unless `final`, as one array or as parts.
 * `libdeflatePieces` and `flushedPieces` make one.
 */
export type PieceDeflater = (piece: Uint8Array, final: boolean) => Uint8Array | [Uint8Array, readonly number[]];

/**
 * What a deflate worker does with a block: pieces deflated by `pieceDeflater` at the fast levels, zlib in one call
 * (one piece) above them (libdeflate's higher levels write several blocks per piece, which `spliceInPlace`
 * cannot join).
 */
export function deflateBlockSync(block: Uint8Array, last: boolean, level: number, pieceDeflater: PieceDeflater, options: PieceOptions = {}): PiecedBlock {
  if (level <= FAST_LEVEL) return deflatePieces(block, last, pieceDeflater, options);
  return piecesOf(block, [block.length], last, options, () => zlib.deflateRawSync(block, zlibOptions(last, level)));
}

/**
 * Deflates `block` in pieces of at most 48 KiB, each with `pieceDeflater`.
 *
 * Why pieces: each one starting without a window costs about what a faster compressor's better matching gains
 * (README "Performance"), and pieces that stand alone are what makes reuse fine-grained: a changed database page
 * costs the one or two pieces it lies in, not its whole 1 MiB block (`block-reuse.ts`).
 */
export function deflatePieces(block: Uint8Array, last: boolean, pieceDeflater: PieceDeflater, options: PieceOptions = {}): PiecedBlock {
  const count = Math.max(1, Math.ceil(block.length / PIECE_LIMIT));
  const pieceSize = Math.ceil(block.length / count);
  const lengths = Array.from({ length: count }, (_, i) => Math.min(pieceSize, Math.max(0, block.length - i * pieceSize)));
  return piecesOf(block, lengths, last, options, pieceDeflater);
}

/**
 * Pieces from `libdeflate` (a whole-stream compressor, fastest level), each spliced to the next
 * (`deflate-splice.ts`). A piece that cannot be spliced (rare: a block full of matches, or fixed codes) is
 * deflated by zlib with a sync flush instead. On the bench's data this is about 1.1× faster than zlib level 2 at
 * the same size, single-threaded.
 */
export function libdeflatePieces(libdeflate: (piece: Uint8Array) => Uint8Array): PieceDeflater {
  return (piece, final) => {
    const whole = libdeflate(piece);
    if (final) return whole;
    const tail = spliceInPlace(whole);
    return tail ? [whole, tail] : zlibPiece(piece, false);
  };
}

/**
 * Pieces from a compressor that ends an open piece with a flush itself (ISA-L, `isal-deflate.ts`); a piece it
 * gives up on (undefined), or an open one that does not end as one must (`endsOpen`), is deflated by zlib
 * instead. Why check: ISA-L is reached through `bun:ffi`, which Bun calls experimental, and a length read wrong
 * there would go into an archive unseen. A final piece has no such mark to check.
 */
export function flushedPieces(deflate: (piece: Uint8Array, final: boolean) => Uint8Array | undefined): PieceDeflater {
  return (piece, final) => {
    const output = deflate(piece, final);
    return output && (final || endsOpen(output, piece.length)) ? output : zlibPiece(piece, final);
  };
}

/** Whether `data` ends on the empty stored block of a full flush (00 00 ff ff), on a byte boundary. */
export function endsOnFullFlush(data: Uint8Array): boolean {
  const n = data.length;
  return n >= 5 && data[n - 4] === 0x00 && data[n - 3] === 0x00 && data[n - 2] === 0xff && data[n - 1] === 0xff;
}

/**
 * Whether `data` ends as an open piece of `inputLength` bytes must, so the next piece can follow it: on a full
 * flush, or as stored blocks of exactly its input, which is what ISA-L writes for a piece it cannot compress.
 */
export function endsOpen(data: Uint8Array, inputLength: number): boolean {
  return endsOnFullFlush(data) || (inputLength > 0 && data.length === inputLength + 5 * Math.ceil(inputLength / 65535));
}

const zlibPiece = (piece: Uint8Array, final: boolean) => zlib.deflateRawSync(piece, zlibOptions(final, FAST_LEVEL));

/** Deflates `block` a piece at a time (`lengths` of input each), skipping the reusable ones. */
function piecesOf(
  block: Uint8Array,
  lengths: number[],
  last: boolean,
  options: PieceOptions,
  deflate: (piece: Uint8Array, final: boolean) => Uint8Array | [Uint8Array, readonly number[]],
): PiecedBlock {
  const parts: (Uint8Array | readonly number[])[] = [];
  const pieces: PiecedBlock["pieces"] = [];
  const fingerprints = options.fingerprint ? new Uint8Array(FINGERPRINT_BYTES * lengths.length) : undefined;
  // A piece deflater's output may be a view of its ring (`piece-ring.ts`), valid for about one 1 MiB block's
  // output: the pieces of a larger block are copied out as they come, before the ring comes round to them.
  const outlivesRing = block.length + 64 * lengths.length > RING_VALID_BYTES;
  let start = 0;
  for (const [i, inputLength] of lengths.entries()) {
    const piece = block.subarray(start, start + inputLength);
    start += inputLength;
    const final = last && i === lengths.length - 1;
    const fingerprint = options.fingerprint?.(piece);
    if (fingerprint) fingerprints!.set(fingerprint, FINGERPRINT_BYTES * i);
    const reuse = fingerprint && options.reusable?.(fingerprint, final, inputLength);
    if (reuse !== undefined) {
      pieces.push({ inputLength, reuse });
      continue;
    }
    const out = deflate(piece, final);
    let fresh = 0;
    for (const part of out instanceof Uint8Array ? [out] : out) {
      parts.push(outlivesRing ? part.slice() : part);
      fresh += part.length;
    }
    pieces.push({ inputLength, fresh });
  }
  return { output: joinParts(parts, options.into), pieces, ...(fingerprints ? { fingerprints } : {}) };
}

/** The parts one after another at the start of `into` where they fit, else as one array (`concatBytes`). */
function joinParts(parts: readonly (Uint8Array | readonly number[])[], into: Uint8Array | undefined): Uint8Array {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  if (!into || length > into.length) return concatBytes(parts);
  let at = 0;
  for (const part of parts) {
    into.set(part, at);
    at += part.length;
  }
  return into.subarray(0, length);
}
