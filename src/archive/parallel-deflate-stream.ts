import { type DeflateBlock, type DeflatedBlock, zlibDeflateBlock } from "./deflate-block.ts";

export interface ParallelDeflateOptions {
  level?: number;
  /** Uncompressed bytes per independently deflated block. */
  blockSize?: number;
  /** Where blocks are deflated: node:zlib's thread pool unless told otherwise (`runtime.ts` picks the fastest). */
  deflate?: DeflateBlock;
}

/**
 * Where a deflater sends each block: the compressed bytes to come, the input bytes the block holds meanwhile,
 * and whether it is the entry's last.
 */
export type BlockSink = (compressed: Promise<DeflatedBlock>, inputBytes: number, last: boolean) => Promise<void>;

/**
 * A deflater that keeps several cores busy on one stream, pigz-style: the input is cut into blocks, each is
 * deflated on its own (on node:zlib's thread pool, or libdeflate workers), every block but the last ending on a
 * byte boundary without a final block, so the pieces concatenate into one valid raw deflate stream.
 *
 * Why: a single zlib stream runs on one core; on this data two cores nearly halve the time (PERF-NOTES).
 * No block refers back into the one before (pigz primes each with the previous 32 KiB): that cost 0.15% in
 * size on the bench's database, and it lets a reader that knows where the blocks start inflate them in
 * parallel too (`block-inflate.ts`).
 * Blocks go to `sink` in order as they start; the sink writes them in that order and applies backpressure
 * (see `OrderedOutput`), which bounds memory.
 */
export class ParallelDeflater {
  readonly #level: number;
  /** Uncompressed bytes in every block but the last. */
  readonly blockSize: number;
  readonly #sink: BlockSink;
  readonly #deflate: DeflateBlock;
  #buffer: Uint8Array | undefined;
  #filled = 0;

  constructor(sink: BlockSink, options: ParallelDeflateOptions = {}) {
    this.#sink = sink;
    this.#level = options.level ?? 2;
    this.blockSize = options.blockSize ?? 1024 * 1024;
    this.#deflate = options.deflate ?? zlibDeflateBlock;
  }

  /**
   * Takes `chunk`; full blocks go to the sink. Whole blocks of it are deflated where they lie, without a copy,
   * so the caller must not change it afterwards; a partial block is copied.
   */
  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#filled === 0 && chunk.length - offset >= this.blockSize) {
        await this.#start(chunk.subarray(offset, offset + this.blockSize), false);
        offset += this.blockSize;
        continue;
      }
      this.#buffer ??= new Uint8Array(this.blockSize);
      const n = Math.min(this.blockSize - this.#filled, chunk.length - offset);
      this.#buffer.set(chunk.subarray(offset, offset + n), this.#filled);
      this.#filled += n;
      offset += n;
      if (this.#filled === this.blockSize) {
        const block = this.#buffer;
        this.#buffer = undefined;
        this.#filled = 0;
        await this.#start(block, false);
      }
    }
  }

  /** Sends what is left as the final block. */
  async end(): Promise<void> {
    await this.#start(this.#buffer?.subarray(0, this.#filled) ?? new Uint8Array(0), true);
  }

  #start(block: Uint8Array, last: boolean): Promise<void> {
    return this.#sink(this.#deflate(block, last, this.#level), block.length, last);
  }
}
