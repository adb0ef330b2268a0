/**
 * How an entry's bytes become independently deflated blocks: `ParallelDeflater` cuts them up and keeps several
 * blocks deflating at once; `parallelDeflaters` is the zip writer's `OpenEntryDeflater` made of it.
 */
import type { BlockSink, EntryDeflater, OpenEntryDeflater } from "../zip/index.ts";
import { type BlockBuffer, type DeflateBlock, type DeflatedBlock, zlibDeflateBlock } from "./deflate-block.ts";

export interface ParallelDeflateOptions {
  level?: number;
  /** Uncompressed bytes per independently deflated block. */
  blockSize?: number;
  /** Where blocks are deflated: node:zlib's thread pool unless told otherwise (`engine-choice.ts` picks the fastest). */
  deflate?: DeflateBlock;
  /** Where blocks are filled: memory the deflater reads in place, or a new array when not given. */
  blockBuffer?: BlockBuffer;
}

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
export class ParallelDeflater implements EntryDeflater {
  readonly #level: number;
  /** Uncompressed bytes in every block but the last. */
  readonly blockSize: number;
  readonly #sink: BlockSink<DeflatedBlock>;
  readonly #deflate: DeflateBlock;
  readonly #blockBuffer: BlockBuffer;
  #buffer: Uint8Array | undefined;
  #filled = 0;

  constructor(sink: BlockSink<DeflatedBlock>, options: ParallelDeflateOptions = {}) {
    this.#sink = sink;
    this.#level = options.level ?? 2;
    this.blockSize = options.blockSize ?? 1024 * 1024;
    this.#deflate = options.deflate ?? zlibDeflateBlock;
    this.#blockBuffer = options.blockBuffer ?? (async (size) => new Uint8Array(size));
  }

  /**
   * Takes `chunk`, copied into the block being filled; full blocks go to the sink. The caller may reuse `chunk`
   * once this resolves.
   *
   * Why always a copy: the copy into the deflate workers' shared memory has to be made anyway, and made here it
   * is the only one (`DeflateWorkers.deflate` takes a block already in its slot as it is), and it leaves the
   * caller free to read the next chunk into the same memory (`collect-sources.ts`): a backup of the bench's data
   * read 800 fresh 1 MiB buffers, garbage that raised the job thread's peak memory by tens of MB.
   */
  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      this.#buffer ??= await this.#blockBuffer(this.blockSize);
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

/**
 * The zip writer's deflater (`ZipStreamWriterOptions.deflater`): a `ParallelDeflater` for each entry, at the
 * entry's level, with `options` (where blocks deflate and are filled).
 */
export function parallelDeflaters(options: Omit<ParallelDeflateOptions, "level"> = {}): OpenEntryDeflater<DeflatedBlock> {
  return (sink, level) => new ParallelDeflater(sink, { ...options, level });
}
