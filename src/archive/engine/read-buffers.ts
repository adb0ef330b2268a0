/**
 * Memory for an entry's compressed reads, used again by the next read once every block read into it has
 * inflated (`ReadBuffers`, for `inflateBlocks`).
 *
 * Why: each 4 MiB read of a restore came in new memory, and Bun's allocator hands freed memory back to the
 * system, so every read was faulted in afresh. On the bench's VM a page fault costs about 15 µs: a restore of
 * 500 MB of blobs faulted 160 000 pages (docs/operations.md).
 */
import { uninitializedBytes } from "../../uninitialized-bytes.ts";

/** Reads smaller than this (most of a small upload's entry) come in memory of the source's own. */
const POOLED_MIN_BYTES = 256 * 1024;

export class ReadBuffers {
  readonly bytes: number;
  readonly #maxFree: number;
  readonly #free: Uint8Array[] = [];

  /** Buffers of `bytes`, at most `maxFree` of them kept between reads (more may be out at once). */
  constructor(bytes: number, maxFree: number) {
    this.bytes = bytes;
    this.#maxFree = maxFree;
  }

  /**
   * A buffer for a read of `length` bytes, or undefined for a read too small to be worth one or too large to fit.
   * Never waits: a buffer comes back only once blocks read into it have inflated, which may be what the caller
   * is waiting for, so when none is free a new one is made.
   */
  take(length: number): Uint8Array | undefined {
    if (length < POOLED_MIN_BYTES || length > this.bytes) return undefined;
    return this.#free.pop() ?? uninitializedBytes(this.bytes);
  }

  /** `buffer` (from `take`) may be read into again. */
  give(buffer: Uint8Array): void {
    if (this.#free.length < this.#maxFree) this.#free.push(buffer);
  }
}

/**
 * A buffer taken from `buffers`, given back once everyone holding it has let go: the reader, until it has handed
 * out every block in it, and each of those blocks until it has inflated.
 */
export class HeldBuffer {
  readonly #buffers: ReadBuffers;
  readonly buffer: Uint8Array;
  #holders = 1;

  constructor(buffers: ReadBuffers, buffer: Uint8Array) {
    this.#buffers = buffers;
    this.buffer = buffer;
  }

  /** One more holder: the function it returns lets go, once however often it is called. */
  hold(): () => void {
    this.#holders++;
    let held = true;
    return () => {
      if (held) this.letGo();
      held = false;
    };
  }

  /** The first holder (the reader) lets go. */
  letGo(): void {
    if (--this.#holders === 0) this.#buffers.give(this.buffer);
  }
}
