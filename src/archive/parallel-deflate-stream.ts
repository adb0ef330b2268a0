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
 * Backpressure: `transform` waits for the oldest block once `maxInFlight` are pending, so memory stays flat.
 * The CRC-32 is computed here with the runtime's native CRC (in order, on the calling thread).
 */
export class ParallelDeflateStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(options: ParallelDeflateOptions = {}) {
    const { level = 2, blockSize = 1024 * 1024, maxInFlight = 6, gzip = false } = options;
    const pending: Promise<Buffer>[] = [];
    let buffer = new Uint8Array(blockSize);
    let filled = 0;
    let previousTail: Uint8Array | undefined;
    let crc = 0;
    let total = 0;

    const start = (block: Uint8Array, last: boolean) => {
      crc = crc32(block, crc);
      total += block.length;
      const opts: zlib.ZlibOptions = { level, ...(last ? {} : { finishFlush: zlib.constants.Z_SYNC_FLUSH }) };
      if (previousTail) opts.dictionary = previousTail;
      const promise = deflateRaw(block, opts);
      // Rejections surface when the block is awaited in order; this only keeps them from being reported twice.
      promise.catch(() => {});
      pending.push(promise);
      previousTail = block.length >= WINDOW ? block.slice(block.length - WINDOW) : concatTail(previousTail, block);
    };

    super({
      start(controller) {
        if (gzip) controller.enqueue(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]));
      },
      async transform(chunk, controller) {
        let offset = 0;
        while (offset < chunk.length) {
          const n = Math.min(blockSize - filled, chunk.length - offset);
          buffer.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === blockSize) {
            start(buffer, false);
            buffer = new Uint8Array(blockSize);
            filled = 0;
            while (pending.length >= maxInFlight) controller.enqueue(await pending.shift()!);
          }
        }
      },
      async flush(controller) {
        start(buffer.subarray(0, filled), true);
        while (pending.length) controller.enqueue(await pending.shift()!);
        if (gzip) {
          const trailer = new Uint8Array(8);
          const view = new DataView(trailer.buffer);
          view.setUint32(0, crc >>> 0, true);
          view.setUint32(4, total >>> 0, true);
          controller.enqueue(trailer);
        }
      },
    }, { highWaterMark: 1 }, { highWaterMark: maxInFlight });
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
