import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { crc32 } from "./runtime.ts";

const deflateRaw = promisify(zlib.deflateRaw) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>;

/** Deflate's window: each block is primed with this much of the input before it, so splitting costs little ratio. */
const WINDOW = 32 * 1024;

export interface ParallelDeflateOptions {
  level?: number;
  /** Uncompressed bytes per independently deflated block. */
  blockSize?: number;
  /** Blocks being deflated at once; bounds memory to about `2 × blockSize × maxInFlight`. */
  maxInFlight?: number;
  /** Wrap the output in a gzip header and trailer (CRC-32 and size), the way zip.js likes to take its CRC. */
  gzip?: boolean;
}

/**
 * A deflater that keeps several cores busy on one stream, pigz-style: the input is cut into blocks, each is
 * deflated on node:zlib's thread pool (primed with the 32 KiB before it as a dictionary), every block but
 * the last ends with a sync flush so the pieces concatenate into one valid raw deflate stream.
 *
 * Why: a single zlib stream runs on one core; on this data two cores nearly halve the time (PERF-NOTES).
 * Backpressure: `write` waits for the oldest block once `maxInFlight` are pending, so memory stays flat at
 * about `2 × blockSize × maxInFlight`. Output comes back in order through `emit`.
 */
export class ParallelDeflater {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #maxInFlight: number;
  readonly #pending: Promise<Buffer>[] = [];
  #buffer: Uint8Array;
  #filled = 0;
  #previousTail: Uint8Array | undefined;
  /** Uncompressed bytes taken so far. */
  bytesIn = 0;

  constructor(options: ParallelDeflateOptions = {}) {
    this.#level = options.level ?? 2;
    this.#blockSize = options.blockSize ?? 1024 * 1024;
    this.#maxInFlight = options.maxInFlight ?? 6;
    this.#buffer = new Uint8Array(this.#blockSize);
  }

  /** Takes `chunk` (copied: the caller may reuse it); calls `emit` with compressed output as blocks complete. */
  async write(chunk: Uint8Array, emit: (data: Uint8Array) => void | Promise<void>): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(this.#blockSize - this.#filled, chunk.length - offset);
      this.#buffer.set(chunk.subarray(offset, offset + n), this.#filled);
      this.#filled += n;
      offset += n;
      if (this.#filled === this.#blockSize) {
        this.#start(this.#buffer, false);
        this.#buffer = new Uint8Array(this.#blockSize);
        this.#filled = 0;
        while (this.#pending.length >= this.#maxInFlight) await emit(await this.#pending.shift()!);
      }
    }
  }

  /** Deflates what is left as the final block and emits everything still pending. */
  async end(emit: (data: Uint8Array) => void | Promise<void>): Promise<void> {
    this.#start(this.#buffer.subarray(0, this.#filled), true);
    while (this.#pending.length) await emit(await this.#pending.shift()!);
  }

  #start(block: Uint8Array, last: boolean): void {
    this.bytesIn += block.length;
    const options: zlib.ZlibOptions = { level: this.#level, ...(last ? {} : { finishFlush: zlib.constants.Z_SYNC_FLUSH }) };
    if (this.#previousTail) options.dictionary = this.#previousTail;
    const promise = deflateRaw(block, options);
    // Rejections surface when the block is awaited in order; this only keeps them from being reported early.
    promise.catch(() => {});
    this.#pending.push(promise);
    this.#previousTail = block.length >= WINDOW ? block.slice(block.length - WINDOW) : concatTail(this.#previousTail, block);
  }
}

/**
 * `ParallelDeflater` as a web `TransformStream`, optionally wrapped in a gzip header and trailer (CRC-32 from
 * the runtime's native one, and size), which is how zip.js takes a codec's CRC.
 */
export class ParallelDeflateStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(options: ParallelDeflateOptions = {}) {
    const deflater = new ParallelDeflater(options);
    const gzip = options.gzip ?? false;
    let crc = 0;
    super({
      start(controller) {
        if (gzip) controller.enqueue(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]));
      },
      async transform(chunk, controller) {
        if (gzip) crc = crc32(chunk, crc);
        await deflater.write(chunk, (data) => controller.enqueue(data));
      },
      async flush(controller) {
        await deflater.end((data) => controller.enqueue(data));
        if (gzip) {
          const trailer = new Uint8Array(8);
          const view = new DataView(trailer.buffer);
          view.setUint32(0, crc >>> 0, true);
          view.setUint32(4, deflater.bytesIn >>> 0, true);
          controller.enqueue(trailer);
        }
      },
    }, { highWaterMark: 1 }, { highWaterMark: 6 });
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
