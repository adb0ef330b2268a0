/**
 * Pieces that look incompressible (random bytes, already compressed uploads, encrypted blobs) written as stored
 * deflate blocks without deflating them (`storingIncompressible`), by a cheap look at their bytes first.
 */
import { PIECE_LIMIT, type PieceDeflater } from "./deflate-block.ts";
import { PieceRing } from "./piece-ring.ts";

/** Bytes looked at, at each end of a piece: two pages of a database, far less than deflating the piece. */
const SAMPLE_BYTES = 2048;
/**
 * Bits per byte (order-0 entropy) above which a sample counts as incompressible. Random bytes measure about
 * 7.91 over 2 KiB; text and a database's rows 4–6, so the line is far from both. Deflate may still find a
 * little in such bytes (repeats the histogram cannot see): on the bench's blobs the archive grew by 0.07%.
 */
const INCOMPRESSIBLE_BITS = 7.8;
/** The most one stored block holds (its LEN field is 16 bits). */
const STORED_BLOCK_MAX = 65535;

/** `n × log2(n)` for every count a sample can hold, so that the entropy costs one lookup per byte value. */
const N_LOG_N = Float64Array.from({ length: SAMPLE_BYTES + 1 }, (_, n) => (n ? n * Math.log2(n) : 0));

/** Order-0 entropy of `bytes` (at most `SAMPLE_BYTES` of them), in bits per byte. */
export function sampleEntropy(bytes: Uint8Array): number {
  if (bytes.length > SAMPLE_BYTES) throw new RangeError(`A sample is at most ${SAMPLE_BYTES} bytes.`);
  const counts = new Uint16Array(256);
  for (let i = 0; i < bytes.length; i++) counts[bytes[i]!]!++;
  let sum = 0;
  for (let value = 0; value < 256; value++) sum += N_LOG_N[counts[value]!]!;
  return bytes.length ? Math.log2(bytes.length) - sum / bytes.length : 0;
}

/** Whether both ends of `piece` look like random bytes; a piece too short to sample twice never does. */
export function looksIncompressible(piece: Uint8Array): boolean {
  if (piece.length < 2 * SAMPLE_BYTES) return false;
  return sampleEntropy(piece.subarray(0, SAMPLE_BYTES)) > INCOMPRESSIBLE_BITS && sampleEntropy(piece.subarray(piece.length - SAMPLE_BYTES)) > INCOMPRESSIBLE_BITS;
}

/**
 * `piece` as stored deflate blocks (RFC 1951 §3.2.4), each a header byte (BFINAL in its low bit, BTYPE 00, the
 * rest padding), LEN and its complement, then the bytes: what ISA-L itself writes for a piece it cannot
 * compress, and what `endsOpen` admits as an open piece. It starts and ends on a byte boundary, as every piece does.
 * Written in `ring`'s memory when given (a deflate worker's), else in memory of its own.
 */
export function storedPiece(piece: Uint8Array, final: boolean, ring?: PieceRing): Uint8Array {
  const blocks = Math.max(1, Math.ceil(piece.length / STORED_BLOCK_MAX));
  const length = piece.length + 5 * blocks;
  const out = ring ? ring.take(length) : new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < blocks; i++) {
    const bytes = piece.subarray(i * STORED_BLOCK_MAX, (i + 1) * STORED_BLOCK_MAX);
    out[at] = final && i === blocks - 1 ? 1 : 0;
    out[at + 1] = bytes.length & 0xff;
    out[at + 2] = bytes.length >> 8;
    out[at + 3] = ~bytes.length & 0xff;
    out[at + 4] = (~bytes.length >> 8) & 0xff;
    out.set(bytes, at + 5);
    at += 5 + bytes.length;
  }
  return ring ? ring.used(out, length) : out;
}

/**
 * `deflater`, except that a piece that looks incompressible is stored instead of deflated.
 *
 * Why: ISA-L's fastest level spends about as long on random bytes as on text (330–450 MB/s a core here) only to
 * write them stored; the look costs a few microseconds a piece. On the bench's database of blobs (85% random)
 * deflating went from about 450 to 1 140 MB/s a core; on text and rows no piece is stored and the archive is
 * unchanged.
 */
export function storingIncompressible(deflater: PieceDeflater): PieceDeflater {
  // Pieces of up to 48 KiB (`deflatePieces`), one stored block each.
  const ring = new PieceRing(PIECE_LIMIT + 5);
  return (piece, final) => (looksIncompressible(piece) ? storedPiece(piece, final, ring) : deflater(piece, final));
}
