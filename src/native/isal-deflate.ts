/**
 * Intel's ISA-L deflate (`libisal`, Debian's `libisal2`) through `bun:ffi`, for the deflate workers: at its
 * first level about 1.8–2× libdeflate's fastest on the bench's data, for 4% more output (bench/README.md).
 * Bun only, and only where the library is installed and passes a round trip through zlib when it loads; the
 * workers use libdeflate otherwise (`deflate.worker.ts`). Outside `src/archive`, which must also run on Deno.
 *
 * Each piece is deflated by `isal_deflate_stateless`, which starts without a window, as libdeflate's pieces do:
 * a piece that does not end its entry ends with a full flush (an empty stored block, on a byte boundary), so it
 * can be followed by the next piece and reused alone (`block-reuse.ts`), with no splicing (`deflate-splice.ts`).
 */
import { FFIType, ptr } from "bun:ffi";
import { inflateRawSync } from "node:zlib";
import { endsOnFullFlush, PieceRing } from "../archive/engine/index.ts";
import { openIsalLibrary, roundTripText } from "./isal-library.ts";

/**
 * A piece's raw deflate data; `final` ends the stream, anything else ends with a full flush. The bytes are a view
 * of the deflater's own memory, valid until it has written `RING_VALID_BYTES` more (`piece-ring.ts`): enough for
 * the rest of a block's pieces (`deflatePieces`), which are copied out together.
 */
export type PieceDeflate = (piece: Uint8Array, final: boolean) => Uint8Array | undefined;

/** The largest piece deflated into the ring (`deflatePieces` cuts 48 KiB ones); a larger one gets memory of its own. */
const MAX_PIECE_BYTES = 64 * 1024;

/**
 * `struct isal_zstream` (igzip_lib.h, ISA-L 2.x, 64-bit): the public fields come first, then the internal state.
 * Its size is 82,384 bytes in ISA-L 2.30; room is kept for later versions. The round trip at load catches a
 * layout that does not match.
 */
const STREAM_BYTES = 128 * 1024;
const FIELD = { nextIn: 0, availIn: 8, nextOut: 16, availOut: 24, totalOut: 28, level: 40, levelBufSize: 44, levelBuf: 48, endOfStream: 56, flush: 58, gzipFlag: 60 };
const FULL_FLUSH = 2;
const COMP_OK = 0;
/** Enough for `ISAL_DEF_LVL3_DEFAULT` (348,160 bytes in 2.30), the largest a level up to 3 asks for. */
const LEVEL_BUF_BYTES = 512 * 1024;
/**
 * The level backups use: ISA-L's first. In first backups of the bench's data through the server, alternated, it
 * took 9% less CPU than level 3 (the highest) for an archive 2% larger, still 0.98× pb-style-zip's.
 */
export const ISAL_LEVEL = 1;

/**
 * A `PieceDeflate` on ISA-L at `level` (0–3), or undefined where the library cannot be loaded or its output does
 * not inflate back to its input. One per thread: the stream state and work buffer are reused by every call.
 */
export function openIsalDeflate(level: number): PieceDeflate | undefined {
  const lib = openIsalLibrary({
    isal_deflate_stateless_init: { args: [FFIType.ptr], returns: FFIType.void },
    isal_deflate_stateless: { args: [FFIType.ptr], returns: FFIType.i32 },
  });
  if (!lib) return undefined;
  const stream = new Uint8Array(STREAM_BYTES);
  const fields = new DataView(stream.buffer);
  const levelBuf = new Uint8Array(LEVEL_BUF_BYTES);
  // One ring of output for every piece, written in turn (`piece-ring.ts`).
  const ring = new PieceRing(roomFor(MAX_PIECE_BYTES));
  const deflate: PieceDeflate = (piece, final) => {
    const output = ring.take(roomFor(piece.length));
    lib.symbols.isal_deflate_stateless_init(stream); // resets every field below, so each is set again
    fields.setBigUint64(FIELD.nextIn, BigInt(piece.length > 0 ? ptr(piece) : ptr(output)), true);
    fields.setUint32(FIELD.availIn, piece.length, true);
    fields.setBigUint64(FIELD.nextOut, BigInt(ptr(output)), true);
    fields.setUint32(FIELD.availOut, output.length, true);
    fields.setUint32(FIELD.level, level, true);
    fields.setUint32(FIELD.levelBufSize, levelBuf.length, true);
    // Its address is taken for each call, never kept: Bun moves a small typed array's memory when code using it is
    // optimised (oven-sh/bun#32054). This one is too large for that, but a kept address would rest on it.
    fields.setBigUint64(FIELD.levelBuf, BigInt(ptr(levelBuf)), true);
    fields.setUint16(FIELD.endOfStream, final ? 1 : 0, true);
    fields.setUint16(FIELD.flush, final ? 0 : FULL_FLUSH, true);
    fields.setUint16(FIELD.gzipFlag, 0, true);
    if (lib.symbols.isal_deflate_stateless(stream) !== COMP_OK) return undefined;
    const written = fields.getUint32(FIELD.totalOut, true);
    if (written > output.length) return undefined;
    // How an open piece ends is checked by `flushedPieces`, which every caller deflates through.
    return ring.used(output, written);
  };
  return roundTrips(deflate) ? deflate : undefined;
}

/**
 * Output room for a piece: stored blocks are the worst case, 5 bytes of header per 65,535 bytes, plus the final
 * flush and the slack ISA-L wants for its last writes.
 */
function roomFor(pieceBytes: number): number {
  return pieceBytes + 5 * Math.ceil(pieceBytes / 65535 + 1) + 1024;
}

/** Whether two pieces, one open and one final, inflate back to their input, the open one ending on a full flush. */
function roundTrips(deflate: PieceDeflate): boolean {
  const text = roundTripText();
  const open = deflate(text.subarray(0, 40_000), false);
  const final = deflate(text.subarray(40_000), true);
  if (!open || !final || !endsOnFullFlush(open)) return false;
  try {
    return Buffer.from(inflateRawSync(Buffer.concat([open, final]))).equals(Buffer.from(text));
  } catch {
    return false;
  }
}
