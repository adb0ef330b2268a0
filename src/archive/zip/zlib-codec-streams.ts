/**
 * zip.js's compression streams, backed by node:zlib instead of the native or embedded ones (`configureZip`
 * installs them): see `ZlibCompressionStream`.
 */
import { Duplex } from "node:stream";
import * as zlib from "node:zlib";

/**
 * Compression streams for zip.js backed by `node:zlib` (Bun and Deno both have it natively).
 *
 * Why: the native `CompressionStream` has no level, and zip.js's embedded codec is several times slower.
 * Offering the `gzip` format lets zip.js take the CRC-32 from the gzip trailer instead of computing it
 * in JavaScript. (Backups are written by `ZipStreamWriter`; zip.js only reads, and tests make zips with it.)
 */
export class ZlibCompressionStream {
  static supportedFormats = ["deflate-raw", "gzip"];
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;

  constructor(format: string, options: { level?: number } = {}) {
    const codec = format === "gzip" ? zlib.createGzip({ level: options.level ?? 2 }) : zlib.createDeflateRaw({ level: options.level ?? 2 });
    ({ readable: this.readable, writable: this.writable } = toWebPair(codec));
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
