import { ZipWriter } from "@zip.js/zip.js";
import { isCompressible } from "./entry-paths.ts";
import { MANIFEST_FORMAT, MANIFEST_PATH, type Manifest, type ManifestEntry } from "./manifest.ts";
import { Sha256Stream } from "./sha256-stream.ts";
import { configureZip } from "./zip-config.ts";

/** One file to put in an archive. `size` is what the source expects to yield; the manifest records what it did. */
export interface ArchiveSource {
  path: string;
  size: number;
  lastModified: Date;
  open(): Promise<ReadableStream<Uint8Array>>;
}

export interface WriteProgress {
  bytesDone: number;
  entriesDone: number;
  path: string;
}

export interface WriteArchiveOptions {
  /** Deflate level for compressible entries (2 by default: as fast as 1 on our data and 30% smaller, PERF-NOTES; already-compressed files are always stored). */
  level?: number;
  producer: string;
  signal?: AbortSignal;
  onProgress?: (progress: WriteProgress) => void;
}

export interface WrittenArchive {
  /** Hex SHA-256 of the whole archive as written. */
  sha256: string;
  size: number;
  manifest: Manifest;
}

/**
 * Streams sources into a zip on `output`, hashing every entry and the whole archive on the way, and ends the
 * archive with a manifest of every entry's path, size and SHA-256. Memory stays flat: each entry flows through
 * the hash and the deflater chunk by chunk, and nothing is collected. `output` is closed on success and
 * aborted on failure.
 */
export async function writeArchive(
  sources: AsyncIterable<ArchiveSource> | Iterable<ArchiveSource>,
  output: WritableStream<Uint8Array>,
  options: WriteArchiveOptions,
): Promise<WrittenArchive> {
  configureZip();
  const { signal, onProgress, level = 2 } = options;
  const archiveHash = new Sha256Stream();
  // Aborting the pipe aborts `output` too, which is how a failed archive reaches the store as an abort.
  const pipeAbort = new AbortController();
  signal?.addEventListener("abort", () => pipeAbort.abort(signal.reason), { once: true });
  const piped = archiveHash.readable.pipeTo(output, { signal: pipeAbort.signal });
  const zip = new ZipWriter(archiveHash.writable, { keepOrder: true, bufferedWrite: false, useWebWorkers: false });
  const entries: ManifestEntry[] = [];
  let bytesDone = 0;
  try {
    for await (const source of sources) {
      signal?.throwIfAborted();
      const entryHash = new Sha256Stream();
      const counted = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          bytesDone += chunk.length;
          onProgress?.({ bytesDone, entriesDone: entries.length, path: source.path });
          controller.enqueue(chunk);
        },
      });
      const data = (await source.open()).pipeThrough(entryHash).pipeThrough(counted);
      await zip.add(source.path, data, {
        level: isCompressible(source.path) ? level : 0,
        lastModDate: source.lastModified,
        uncompressedSize: source.size,
        signal,
      });
      entries.push({ path: source.path, size: entryHash.bytes, sha256: entryHash.digest() });
      onProgress?.({ bytesDone, entriesDone: entries.length, path: source.path });
    }
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      createdAt: new Date().toISOString(),
      producer: options.producer,
      entries,
    };
    const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest, null, 1));
    await zip.add(MANIFEST_PATH, new Blob([manifestBytes]).stream(), { level, uncompressedSize: manifestBytes.length });
    await zip.close();
    await piped;
    return { sha256: archiveHash.digest(), size: archiveHash.bytes, manifest };
  } catch (error) {
    pipeAbort.abort(error);
    await piped.catch(() => {});
    throw error;
  }
}
