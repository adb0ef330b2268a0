/**
 * zip.js, which reads archives (and makes zips in tests), configured once for the archive core: see
 * `configureZip`.
 */
import { configure } from "@zip.js/zip.js";
import { ZlibCompressionStream, ZlibDecompressionStream } from "./zlib-codec-streams.ts";

let configured = false;

/**
 * zip.js settings for the archive core, applied once per thread: no web workers of its own (we already run
 * inside a worker, and its workers cost 2× the time and memory, see PERF-NOTES), and node:zlib codecs.
 */
export function configureZip(): void {
  if (configured) return;
  configured = true;
  configure({
    useWebWorkers: false,
    useCompressionStream: true,
    CompressionStream: ZlibCompressionStream,
    DecompressionStream: ZlibDecompressionStream,
    chunkSize: 1024 * 1024,
  });
}
