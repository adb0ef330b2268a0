import { promisify } from "node:util";
import * as zlib from "node:zlib";

const deflateRaw = promisify(zlib.deflateRaw) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>;

/** Deflate's window: each block is primed with this much of the input before it, so splitting costs little ratio. */
const WINDOW = 32 * 1024;

export interface ParallelDeflateOptions {
  level?: number;
  /** Uncompressed bytes per independently deflated block. */
  blockSize?: number;
}

/** Where a deflater sends each block: the compressed bytes to come, and the input bytes the block holds meanwhile. */
export type BlockSink = (compressed: Promise<Uint8Array>, inputBytes: number) => Promise<void>;

/**
 * A deflater that keeps several cores busy on one stream, pigz-style: the input is cut into blocks, each is
 * deflated on node:zlib's thread pool (primed with the 32 KiB before it as a dictionary), every block but
 * the last ends with a sync flush so the pieces concatenate into one valid raw deflate stream.
 *
 * Why: a single zlib stream runs on one core; on this data two cores nearly halve the time (PERF-NOTES).
 * Blocks go to `sink` in order as they start; the sink writes them in that order and applies backpressure
 * (see `OrderedOutput`), which bounds memory.
 */
export class ParallelDeflater {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #sink: BlockSink;
  #buffer: Uint8Array;
  #filled = 0;
  #previousTail: Uint8Array | undefined;

  constructor(sink: BlockSink, options: ParallelDeflateOptions = {}) {
    this.#sink = sink;
    this.#level = options.level ?? 2;
    this.#blockSize = options.blockSize ?? 1024 * 1024;
    this.#buffer = new Uint8Array(this.#blockSize);
  }

  /** Takes `chunk` (copied: the caller may reuse it); full blocks go to the sink. */
  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(this.#blockSize - this.#filled, chunk.length - offset);
      this.#buffer.set(chunk.subarray(offset, offset + n), this.#filled);
      this.#filled += n;
      offset += n;
      if (this.#filled === this.#blockSize) {
        const block = this.#buffer;
        this.#buffer = new Uint8Array(this.#blockSize);
        this.#filled = 0;
        await this.#start(block, false);
      }
    }
  }

  /** Sends what is left as the final block. */
  async end(): Promise<void> {
    await this.#start(this.#buffer.subarray(0, this.#filled), true);
  }

  #start(block: Uint8Array, last: boolean): Promise<void> {
    const options: zlib.ZlibOptions = { level: this.#level, ...(last ? {} : { finishFlush: zlib.constants.Z_SYNC_FLUSH }) };
    if (this.#previousTail) options.dictionary = this.#previousTail;
    this.#previousTail = block.length >= WINDOW ? block.slice(block.length - WINDOW) : concatTail(this.#previousTail, block);
    return this.#sink(deflateRaw(block, options), block.length);
  }
}

function concatTail(previous: Uint8Array | undefined, block: Uint8Array): Uint8Array {
  if (!previous) return block.slice();
  const joined = new Uint8Array(Math.min(WINDOW, previous.length + block.length));
  const fromPrevious = joined.length - block.length;
  joined.set(previous.subarray(previous.length - fromPrevious), 0);
  joined.set(block, fromPrevious);
  return joined;
}
