import { Duplex } from "node:stream";
import * as zlib from "node:zlib";
import { ParallelDeflateStream } from "./parallel-deflate-stream.ts";

/**
 * Compression streams for zip.js backed by `node:zlib` (Bun and Deno both have it natively).
 *
 * Why: the native `CompressionStream` has no level, and zip.js's embedded codec is several times slower.
 * Offering the `gzip` format lets zip.js take the CRC-32 from the gzip trailer instead of computing it
 * in JavaScript. Deflating runs block-parallel on node:zlib's thread pool (see `ParallelDeflateStream`),
 * with the CRC-32 from the runtime's native one.
 */
export class ZlibCompressionStream {
  static supportedFormats = ["deflate-raw", "gzip"];
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;

  constructor(format: string, options: { level?: number } = {}) {
    const stream = new ParallelDeflateStream({ level: options.level ?? 2, gzip: format === "gzip" });
    ({ readable: this.readable, writable: this.writable } = stream);
  }
}

/** The inflating counterpart of `ZlibCompressionStream`, also fed gzip-wrapped data so zlib checks the CRC-32. */
export class ZlibDecompressionStream {
  static supportedFormats = ["deflate-raw", "gzip"];
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;

  constructor(format: string) {
    const codec = format === "gzip" ? zlib.createGunzip() : zlib.createInflateRaw();
    ({ readable: this.readable, writable: this.writable } = toWebPair(codec));
  }
}

function toWebPair(codec: Duplex) {
  return Duplex.toWeb(codec) as unknown as { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
}
