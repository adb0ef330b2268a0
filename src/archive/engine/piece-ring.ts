/**
 * One ring of memory for a block's pieces of output, written in turn (`PieceRing`): ISA-L's (`isal-deflate.ts`)
 * and the stored pieces' (`stored-pieces.ts`).
 *
 * Why not a new array per piece: 22 of them per block were most of what a deflate worker allocated, garbage its
 * collector left for long enough to add tens of MB at peak, and each one fresh memory to fault in (about 15 µs a
 * page on the bench's VM, docs/operations.md).
 */
import { uninitializedBytes } from "../../uninitialized-bytes.ts";

/** Output written after a piece's before its memory is written again: a whole 1 MiB block's, stored, and more. */
export const RING_VALID_BYTES = 1024 * 1024 + 64 * 1024;

/**
 * Memory for pieces of at most `maxPieceBytes`, each valid until `RING_VALID_BYTES` more have been used after it:
 * enough for the rest of a block's pieces (`deflatePieces`), which are copied out together. A larger piece gets
 * memory of its own.
 */
export class PieceRing {
  readonly #ring: Uint8Array;
  readonly #maxPieceBytes: number;
  #at = 0;

  constructor(maxPieceBytes: number) {
    this.#maxPieceBytes = maxPieceBytes;
    this.#ring = uninitializedBytes(RING_VALID_BYTES + 2 * maxPieceBytes);
  }

  /** `room` bytes to write a piece into; say how many were written with `used`. */
  take(room: number): Uint8Array {
    if (room > this.#maxPieceBytes) return uninitializedBytes(room);
    if (this.#at + room > this.#ring.length) this.#at = 0;
    return this.#ring.subarray(this.#at, this.#at + room);
  }

  /** The first `written` bytes of `taken` (from `take`) are a piece's: the ring goes on past them. */
  used(taken: Uint8Array, written: number): Uint8Array {
    if (taken.buffer === this.#ring.buffer) this.#at += written;
    return taken.subarray(0, written);
  }
}
