/**
 * Writing a backup archive: the face that puts the parts together. The zip format (`zip/`) is written with the
 * engine's deflater (`engine/`), reusing an earlier archive's pieces and indexing its own (`reuse/`), and the
 * archive ends with a manifest of every entry's SHA-256.
 */
import { hasherFor, openBlockDeflater, openEntryCiphers, parallelDeflaters, type PieceDeflaterName } from "./engine/index.ts";
import { MANIFEST_FORMAT, MANIFEST_PATH, type Manifest } from "./manifest.ts";
import { ManifestEntries, type ManifestHeader } from "./manifest-entries.ts";
import { BlockIndexBuilder, type ReusablePieces, type ReuseCounts } from "./reuse/index.ts";
import { giveBack, isCompressible, ownBytes, ZipStreamWriter } from "./zip/index.ts";
import { collectingEvery } from "../collect-garbage.ts";

/**
 * One file to put in an archive. `size` is what the source expects to yield; the manifest records what it did.
 * The archive copies each chunk before it reads the next, so a source may read the next chunk into the memory
 * of the one before it (`collect-sources.ts` does).
 */
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
  /** Deflate level for compressible entries (2 by default: about as fast as 1 with zlib on our data and 30% smaller, PERF-NOTES; already-compressed files are always stored). */
  level?: number;
  producer: string;
  signal?: AbortSignal;
  onProgress?: (progress: WriteProgress) => void;
  /** List every deflated piece for a later archive to reuse (`block-reuse.ts`), where the deflater can. */
  indexBlocks?: boolean;
  /** An earlier archive whose pieces stand in for pieces of the same input. */
  reuse?: ReusablePieces;
  /** What deflates at the fast levels where the runtime has a choice (`deflate-workers.ts`); ISA-L where it loads. */
  deflater?: PieceDeflaterName;
  /**
   * Encrypts every entry, the manifest too, with WinZip AES-256 (AE-2) under this password (`zip/winzip-aes.ts`).
   * Pieces are then neither reused nor indexed: `reuse` and `indexBlocks` are ignored (`WrittenArchive.reuse`).
   */
  password?: string;
  /**
   * `output` is done with each chunk once that chunk's write resolves: it copies whatever it keeps longer (both
   * stores' streams do, `BackupStore.write`). The deflate workers' blocks are then written from memory they
   * reuse (`zip/lent-bytes.ts`); otherwise each such block is copied first, since the output may keep it.
   */
  outputDoneOnWrite?: boolean;
}

export interface WrittenArchive {
  /** Hex SHA-256 of the whole archive as written. */
  sha256: string;
  size: number;
  /** File entries written, the manifest not counted. */
  entries: number;
  /** The manifest the archive ends with, made into objects when first read (a backup job reads only `entries`). */
  readonly manifest: Manifest;
  /** How much deflated input was deflated now, and how much reused; `skipped` says why no index was kept. */
  reuse: ReuseCounts;
  /** What deflated it ("isa-l", "libdeflate", "zlib"), when anything was deflated at the fast levels. */
  deflater?: string;
  /**
   * Every deflated piece's record (`piece-records.ts`) and the key they were fingerprinted with, when asked for
   * and the deflater could fingerprint them all.
   */
  pieces?: { records: Uint8Array; fingerprintKey: Uint8Array };
}

/**
 * Entries between two collections of this thread's garbage. Why: each entry leaves some KB of it (its stream and
 * reader, headers, promises, messages to and from the workers) that the collector let pile up across thousands of
 * small files. A backup of 50 000 small uploads, run inline, peaked at 280–290 MB without these collections,
 * 205–215 MB with one every 2 048 entries (183–190 MB every 1 024), in the same time: about 15 ms a collection,
 * and the runtime's own collections of the larger heap had cost as much (first backups alternated with the
 * version before: 7.1–8.2 s either way on this shared VM).
 */
const COLLECT_EVERY_ENTRIES = 2048;

/**
 * Streams sources into a zip on `output`, hashing every entry and the whole archive on the way, and ends the
 * archive with a manifest of every entry's path, size and SHA-256. Memory stays flat: each entry flows through
 * the hash and the deflater chunk by chunk, with a bounded number of blocks in flight, and nothing is
 * collected. `output` is closed on success and aborted on failure.
 */
export async function writeArchive(
  sources: AsyncIterable<ArchiveSource> | Iterable<ArchiveSource>,
  output: WritableStream<Uint8Array>,
  options: WriteArchiveOptions,
): Promise<WrittenArchive> {
  const { signal, onProgress, level = 2, password } = options;
  const encrypted = password !== undefined;
  // zip.js (and so every reader here) takes an empty password for none: such an archive could not be opened.
  if (password === "") throw new Error("The archive password is empty.");
  // Encrypted, no piece of the earlier archive is copied and none of this one is listed for a next one.
  const indexBlocks = Boolean(options.indexBlocks) && !encrypted;
  const reuse = encrypted ? undefined : options.reuse;
  const deflater = openBlockDeflater({
    ...(indexBlocks ? { fingerprint: true } : {}),
    ...(reuse ? { reuse } : {}),
    ...(options.deflater ? { deflater: options.deflater } : {}),
  });
  const archiveHash = deflater.hashing.begin();
  let archiveBytes = 0;
  const writer = output.getWriter();
  let writeError: unknown;
  const write = async (data: Uint8Array) => {
    if (writeError !== undefined) throw writeError;
    await archiveHash.update(data);
    archiveBytes += data.length;
    const chunk = options.outputDoneOnWrite ? data : ownBytes(data);
    // Not awaiting each write lets the store's I/O overlap with the next block; `ready` is the backpressure.
    writer
      .write(chunk)
      .catch((error) => {
        writeError ??= error;
      })
      // Written or failed, the output is done with it: lent memory goes back to the deflate workers.
      .finally(() => giveBack(chunk));
    await writer.ready;
  };
  const blockIndex = new BlockIndexBuilder(indexBlocks, { onFull: () => deflater.stopFingerprinting() });
  const entryDeflaters = parallelDeflaters({ deflate: deflater.deflate, ...(deflater.blockBuffer ? { blockBuffer: deflater.blockBuffer } : {}) });
  const ciphers = encrypted ? openEntryCiphers() : undefined;
  const zip = new ZipStreamWriter(write, { deflater: entryDeflaters, onBlockWritten: blockIndex.add, ...(ciphers ? { password: password!, ciphers: ciphers.open } : {}) });
  const entries = new ManifestEntries();
  /**
   * What the manifest waits for: entries' digests and block lists, known after their bytes are read. Each leaves
   * once it is in (a failed one stays, to be thrown below), so only the last few entries' are held.
   */
  const entryDetails = new Set<Promise<void>>();
  const awaitDetail = (detail: Promise<void>) => {
    entryDetails.add(detail);
    detail.then(() => entryDetails.delete(detail), () => {});
  };
  let bytesDone = 0;
  // Counts entries, not bytes: the deflate workers collect by the bytes they hand back (`deflate-workers.ts`).
  const collectEveryFewEntries = collectingEvery(COLLECT_EVERY_ENTRIES);
  try {
    for await (const source of sources) {
      signal?.throwIfAborted();
      const stream = await source.open();
      const entryHash = hasherFor(deflater.hashing, source.size);
      async function* chunks() {
        const reader = stream.getReader();
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            signal?.throwIfAborted();
            await entryHash.update(value);
            bytesDone += value.length;
            onProgress?.({ bytesDone, entriesDone: entries.count, path: source.path });
            yield value;
          }
        } finally {
          await reader.cancel().catch(() => {});
        }
      }
      const added = await zip.addEntry(source.path, chunks(), {
        level: isCompressible(source.path) ? level : 0,
        lastModified: source.lastModified,
        sizeHint: source.size,
      });
      const entry = entries.add(source.path, added.size);
      // Not awaited: the hashing thread may still be a few MiB behind, and the next entry can start meanwhile.
      awaitDetail(entryHash.digest().then((hex) => entries.setSha256(entry, hex)));
      if (added.blocks) {
        // Only worth listing when there is more than one block to inflate at once.
        awaitDetail(added.blocks.then((blocks) => {
          if (blocks.compressedSizes.length > 1) entries.setDeflateBlocks(entry, blocks);
        }));
      }
      onProgress?.({ bytesDone, entriesDone: entries.count, path: source.path });
      collectEveryFewEntries(1);
    }
    await Promise.all(entryDetails);
    const header: ManifestHeader = { format: MANIFEST_FORMAT, createdAt: new Date().toISOString(), producer: options.producer };
    // Streamed: the JSON of 50 000 entries is about 9 MB, and as text and bytes made whole it was the last peak.
    await zip.addEntry(MANIFEST_PATH, entries.json(header), {
      level,
      lastModified: new Date(),
      // Only decides zip64, which a manifest never comes near (about 200 bytes an entry, a million at most).
      sizeHint: 0,
    });
    await zip.close();
    if (writeError !== undefined) throw writeError;
    await writer.close();
    const records = blockIndex.records();
    const pieces = records && deflater.fingerprintKey ? { pieces: { records, fingerprintKey: deflater.fingerprintKey } } : {};
    const used = deflater.deflaterUsed();
    const reuseCounts: ReuseCounts = encrypted ? { ...blockIndex.counts, skipped: "encrypted" } : blockIndex.counts;
    let manifest: Manifest | undefined;
    return {
      sha256: await archiveHash.digest(),
      size: archiveBytes,
      entries: entries.count,
      get manifest() {
        return (manifest ??= entries.manifest(header));
      },
      reuse: reuseCounts,
      ...(used ? { deflater: used } : {}),
      ...pieces,
    };
  } catch (error) {
    await writer.abort(error).catch(() => {});
    throw error;
  } finally {
    deflater.close();
    ciphers?.close();
  }
}
