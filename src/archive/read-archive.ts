/**
 * Reading a backup archive for a restore or an upload's check: the rules of `archive-checks.ts` first, then
 * every entry streamed once through its checks to where it goes, stopping at the first problem.
 */
import { collectingEvery } from "../collect-garbage.ts";
import { EntryWriteError, InvalidBackupError } from "../errors.ts";
import { DEFAULT_LIMITS, entryReadError, inspectArchive, looksLikeZip, openZip, type ArchiveLimits } from "./archive-checks.ts";
import { listedManifest, type ArchiveEntries, type ListedManifest } from "./archive-entries.ts";
import { hasherFor, openBlockInflater } from "./engine/index.ts";
import { checkedEntryData, openEntryKey } from "./entry-data.ts";
import { LOCAL_HEADER_BYTES, type ArchiveSourceReader } from "./zip/index.ts";

/** Entries the caller may hold already (a restore's unchanged uploads), asked about before they are read. */
export interface HeldEntries {
  /**
   * A quick first look, for every entry the manifest lists, before any entry is read: whether the caller might
   * hold it. The source is told to leave those entries' bytes out of its read-ahead.
   */
  mayHold(path: string, size: number): Promise<boolean>;
  /**
   * Asked in the entry's turn, for the entries `mayHold` said yes to: true when the caller holds the entry's
   * bytes, checked against the manifest's `size` and `sha256`; the entry is then neither read nor sent to `sink`.
   */
  take(path: string, size: number, sha256: string): Promise<boolean>;
}

export interface ReadProgress {
  bytesDone: number;
  bytesTotal: number;
  entriesDone: number;
  entriesTotal: number;
}

export interface ReadArchiveOptions {
  limits?: ArchiveLimits;
  /** Where an entry's checked bytes go; by default they are read, checked and dropped. */
  sink?: (path: string, size: number) => Promise<WritableStream<Uint8Array>>;
  /**
   * Called once the archive's structure is checked and before any entry is read, with the uncompressed bytes
   * to come and the paths of the entries; throwing stops the read with nothing extracted (a restore checks the
   * free disk space here).
   */
  beforeEntries?: (bytesTotal: number, paths: string[]) => void | Promise<void>;
  held?: HeldEntries;
  signal?: AbortSignal;
  onProgress?: (progress: ReadProgress) => void;
  /**
   * The key of an encrypted archive (WinZip AES-256, as `writeArchive`'s `password` writes it); a plain archive
   * ignores it. Without it, or with another, an encrypted archive is refused with an `EncryptedBackupError`.
   */
  password?: string;
}

export interface ArchiveReport {
  /** File entries, the manifest not counted. */
  entries: number;
  /** Their paths, in the archive's order: what a complete extraction holds. */
  paths: string[];
  /** Uncompressed bytes of those entries. */
  bytes: number;
  /** Entries not read because the caller held them (`held`), and their bytes. */
  held: { entries: number; bytes: number };
  manifest?: ListedManifest;
  /** What inflated the entries' blocks, for logs, when any were (`openBlockInflater`). */
  inflater?: string;
}

/**
 * Reads a backup archive through its central directory (what extractors trust) and checks everything a
 * restore depends on: first the rules of `inspectArchive` (structure, paths, types, sizes, `data.db`, the
 * manifest's listing), then each entry streamed once through its local header, CRC-32 and, where there is a
 * manifest, SHA-256. Throws `InvalidBackupError` naming the first problem found (`EncryptedBackupError` for an
 * encrypted archive without its key).
 * Entries flow to `sink` as they are checked; a caller extracting must discard everything on failure.
 */
export async function readArchive(source: ArchiveSourceReader, options: ReadArchiveOptions = {}): Promise<ArchiveReport> {
  const zip = openZip(source);
  const inflater = openBlockInflater();
  const entryKey = openEntryKey(options.password);
  try {
    const inspection = await inspectArchive(zip, source, options.limits ?? DEFAULT_LIMITS, entryKey.key);
    const { files, bytes: bytesTotal, manifest, problems, keyError } = inspection;
    if (keyError) throw keyError;
    if (problems.length) throw new InvalidBackupError(problems[0]);
    const paths = Array.from({ length: files.count }, (_, i) => files.filename(i));
    await options.beforeEntries?.(bytesTotal, paths);
    const mayHold = options.held ? await entriesMayHold(files, options.held, source) : new Uint8Array(0);
    if (!looksLikeZip(await source.read(0, 4))) throw new InvalidBackupError("The file is not a zip archive.");
    let bytesDone = 0;
    // Each chunk, and each window an S3 source fetched, is garbage once hashed and written, and the collector lets
    // it pile up (figures in collect-garbage.ts).
    const collect = collectingEvery();
    let entriesDone = 0;
    const held = { entries: 0, bytes: 0 };
    const extractOne = async (i: number) => {
      options.signal?.throwIfAborted();
      const entry = files.at(i);
      const listedSha256 = files.listedSha256(i);
      if (listedSha256 !== undefined && mayHold[i] && (await options.held!.take(entry.filename, entry.uncompressedSize, listedSha256))) {
        held.entries++;
        held.bytes += entry.uncompressedSize;
        bytesDone += entry.uncompressedSize;
        entriesDone++;
        options.onProgress?.({ bytesDone, bytesTotal, entriesDone, entriesTotal: files.count });
        return;
      }
      const hash = hasherFor(inflater.hashing, entry.uncompressedSize);
      const sink = options.sink && (await options.sink(entry.filename, entry.uncompressedSize).catch((error) => {
        throw new EntryWriteError(entry.filename, error);
      }));
      const writer = sink?.getWriter();
      let sinkError: unknown;
      try {
        for await (const chunk of checkedEntryData(source, entry, inspection, files.listedBlocks(i), inflater, entryKey.key)) {
          options.signal?.throwIfAborted();
          await hash.update(chunk);
          if (writer) {
            if (sinkError !== undefined) throw sinkError;
            // Not awaited one by one, so that the disk write overlaps with inflating the next chunk. `ready` waits
            // for the write itself (one chunk is all the queue holds): the chunk is lent until the next is asked for.
            writer.write(chunk).catch((error) => {
              sinkError ??= error;
            });
            await writer.ready;
          }
          bytesDone += chunk.length;
          collect(chunk.length);
          options.onProgress?.({ bytesDone, bytesTotal, entriesDone, entriesTotal: files.count });
        }
        if (writer) {
          if (sinkError !== undefined) throw sinkError;
          await writer.close().catch((error) => {
            throw (sinkError = error);
          });
        }
      } catch (error) {
        await writer?.abort(error).catch(() => {});
        throw error === sinkError ? new EntryWriteError(entry.filename, error) : entryReadError(error, entry.filename);
      }
      if (listedSha256 !== undefined && listedSha256 !== (await hash.digest())) {
        throw new InvalidBackupError(`The checksum of ${entry.filename} does not match the manifest.`);
      }
      entriesDone++;
      options.onProgress?.({ bytesDone, bytesTotal, entriesDone, entriesTotal: files.count });
    };
    // LANES entries at a time: while one inflates on node:zlib's pool, the others are hashed and written here
    // (typically data.db alongside two storage files). After a failure no new entry starts.
    let next = 0;
    let failed = false;
    const lane = async () => {
      while (next < files.count && !failed) {
        try {
          await extractOne(next++);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    const lanes = await Promise.allSettled(Array.from({ length: LANES }, lane));
    const rejected = lanes.find((result): result is PromiseRejectedResult => result.status === "rejected");
    if (rejected) throw rejected.reason;
    const { inflaterUsed } = inflater;
    return {
      entries: files.count,
      paths,
      bytes: bytesTotal,
      held,
      ...(manifest ? { manifest: listedManifest(manifest, files) } : {}),
      ...(inflaterUsed ? { inflater: inflaterUsed } : {}),
    };
  } finally {
    inflater.close();
    entryKey.close();
    await zip.close().catch(() => {});
  }
}

/**
 * Which entries to try `held.take` on (1 each), of those the manifest lists; their bytes are left out of the
 * source's read-ahead.
 */
async function entriesMayHold(files: ArchiveEntries, held: HeldEntries, source: ArchiveSourceReader): Promise<Uint8Array> {
  const found = new Uint8Array(files.count);
  let next = 0;
  const look = async () => {
    while (next < files.count) {
      const i = next++;
      if (files.listedSha256(i) !== undefined && (await held.mayHold(files.filename(i), files.uncompressedSize(i)))) found[i] = 1;
    }
  };
  await Promise.all(Array.from({ length: HOLD_CHECKS }, look));
  // Each from its local header to where its data must end, never into the next entry.
  const byOffset = Uint32Array.from({ length: files.count }, (_, i) => i).sort((a, b) => files.offset(a) - files.offset(b));
  const ranges: [number, number][] = [];
  byOffset.forEach((i, k) => {
    if (!found[i]) return;
    const next = k + 1 < byOffset.length ? files.offset(byOffset[k + 1]!) : source.size;
    ranges.push([files.offset(i), Math.min(next, files.offset(i) + LOCAL_HEADER_BYTES + files.rawFilenameLength(i) + files.compressedSize(i))]);
  });
  source.skip?.(ranges);
  return found;
}

/**
 * Entries read at once. Small files wait on the disk (open, mkdir, write) more than on a core, so while data.db
 * fills one lane, two more keep the storage files moving: extracting the bench's archive took 1.98–2.45 s
 * (median 2.13) with three lanes against 2.31–2.55 s (median 2.42) with two, runs alternated; four were slower.
 */
const LANES = 3;

/** `mayHold` questions asked at once (each a few file system calls). */
const HOLD_CHECKS = 16;
