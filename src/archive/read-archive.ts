import { createHash } from "node:crypto";
import { once } from "node:events";
import * as zlib from "node:zlib";
import { ERR_UNSAFE_FILENAME, Reader, ZipReader, type Entry, type FileEntry } from "@zip.js/zip.js";
import { EntryWriteError, InvalidBackupError, StorageError } from "../errors.ts";
import { blockPlan, inflateBlocks, type BlockInflater, type DeflateBlocks } from "./block-inflate.ts";
import { entryPathProblem } from "./entry-paths.ts";
import { MANIFEST_PATH, parseManifest, type Manifest } from "./manifest.ts";
import { crc32, openBlockInflater } from "./runtime.ts";
import { WorkerPoolError } from "./worker-pool.ts";
import { configureZip } from "./zip-config.ts";

/** Random access to an archive (a local file, a range-reading S3 object, bytes in a test). */
export interface ArchiveSourceReader {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** A hint: these byte ranges will probably not be read, so a source that reads ahead should leave them out. */
  skip?(ranges: [start: number, end: number][]): void;
}

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

/** Caps that keep a hostile archive from filling the disk (a "zip bomb"). */
export interface ArchiveLimits {
  /** Largest total uncompressed size accepted. */
  maxTotalBytes: number;
  /**
   * Largest uncompressed/compressed ratio of one entry, checked for entries over `ratioFloorBytes`: an entry that
   * claims more than deflate can produce is lying about its size.
   */
  maxRatio: number;
  ratioFloorBytes: number;
  maxEntries: number;
}

export const DEFAULT_LIMITS: ArchiveLimits = {
  maxTotalBytes: 256 * 1024 ** 3,
  // Deflate's ceiling: 258 bytes from a 2-bit match at best. A file of zeros (a disk image, a database's
  // zeroed free pages) honestly gets close to it; a lower cap refused our own backups of such files.
  maxRatio: 1032,
  ratioFloorBytes: 1024 * 1024,
  maxEntries: 1_000_000,
};

/** Why an entry of these sizes is refused as a zip bomb, if it is. */
export function zipBombProblem(name: string, size: number, compressedSize: number, limits: ArchiveLimits): string | undefined {
  if (size <= limits.ratioFloorBytes || size <= Math.max(compressedSize, 1) * limits.maxRatio) return undefined;
  return `The entry ${JSON.stringify(name)} claims to expand more than ${limits.maxRatio} times, more than deflate can: refused as a zip bomb.`;
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
   * to come; throwing stops the read with nothing extracted (a restore checks the free disk space here).
   */
  beforeEntries?: (bytesTotal: number) => void | Promise<void>;
  held?: HeldEntries;
  signal?: AbortSignal;
  onProgress?: (progress: ReadProgress) => void;
}

export interface ArchiveReport {
  /** File entries, the manifest not counted. */
  entries: number;
  /** Uncompressed bytes of those entries. */
  bytes: number;
  /** Entries not read because the caller held them (`held`), and their bytes. */
  held: { entries: number; bytes: number };
  manifest?: Manifest;
  /** What inflated the entries' blocks, for logs, when any were (`openBlockInflater`). */
  inflater?: string;
}

const ZIP_MAGIC = [0x50, 0x4b];
const SYMLINK_MODE = 0o120000;
const FILE_TYPE_MASK = 0o170000;

/** Whether the bytes start like a zip (local header or an empty archive's end record). */
export function looksLikeZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === ZIP_MAGIC[0] && head[1] === ZIP_MAGIC[1] &&
    ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}

/**
 * Reads a backup archive through its central directory (what extractors trust) and checks everything a
 * restore depends on, streaming each entry once: safe paths, no symlinks, no encryption, sane sizes,
 * `data.db` at the root, every CRC-32, and, when there is a manifest, that it lists exactly the entries
 * with matching sizes and SHA-256. Throws `InvalidBackupError` naming the first problem found.
 * Entries flow to `sink` as they are checked; a caller extracting must discard everything on failure.
 */
export async function readArchive(source: ArchiveSourceReader, options: ReadArchiveOptions = {}): Promise<ArchiveReport> {
  configureZip();
  const limits = options.limits ?? DEFAULT_LIMITS;
  const zip = new ZipReader(toZipReader(source), { checkCrc32: true, checkOverlappingEntry: true, useWebWorkers: false });
  const inflater = openBlockInflater();
  try {
    const entries = await listEntries(zip, source);
    const files = checkStructure(entries, source.size, limits);
    const manifest = await readManifest(entries);
    if (manifest) checkManifestListing(manifest, files);
    const expected = new Map(manifest?.entries.map((e) => [e.path, e]));
    const bytesTotal = files.reduce((sum, e) => sum + e.uncompressedSize, 0);
    await options.beforeEntries?.(bytesTotal);
    const mayHold = options.held ? await entriesMayHold(entries, files, expected, options.held, source) : new Set<FileEntry>();
    await checkHead(source);
    let bytesDone = 0;
    let entriesDone = 0;
    const held = { entries: 0, bytes: 0 };
    const extractOne = async (entry: FileEntry) => {
      options.signal?.throwIfAborted();
      const listed = expected.get(entry.filename);
      if (listed && mayHold.has(entry) && (await options.held!.take(entry.filename, listed.size, listed.sha256))) {
        held.entries++;
        held.bytes += listed.size;
        bytesDone += listed.size;
        entriesDone++;
        options.onProgress?.({ bytesDone, bytesTotal, entriesDone, entriesTotal: files.length });
        return;
      }
      const hash = createHash("sha256");
      const sink = options.sink ? await options.sink(entry.filename, entry.uncompressedSize) : undefined;
      const writer = sink?.getWriter();
      let sinkError: unknown;
      try {
        for await (const chunk of checkedEntryData(source, entry, expected.get(entry.filename)?.deflateBlocks, inflater)) {
          options.signal?.throwIfAborted();
          hash.update(chunk);
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
          options.onProgress?.({ bytesDone, bytesTotal, entriesDone, entriesTotal: files.length });
        }
        if (writer) {
          if (sinkError !== undefined) throw sinkError;
          await writer.close().catch((error) => {
            throw (sinkError = error);
          });
        }
      } catch (error) {
        await writer?.abort(error).catch(() => {});
        throw error === sinkError ? new EntryWriteError(entry.filename, error) : toInvalid(error, entry.filename);
      }
      if (listed && listed.sha256 !== hash.digest("hex")) {
        throw new InvalidBackupError(`The checksum of ${entry.filename} does not match the manifest.`);
      }
      entriesDone++;
      options.onProgress?.({ bytesDone, bytesTotal, entriesDone, entriesTotal: files.length });
    };
    // LANES entries at a time: while one inflates on node:zlib's pool, the others are hashed and written here
    // (typically data.db alongside two storage files). After a failure no new entry starts.
    let next = 0;
    let failed = false;
    const lane = async () => {
      while (next < files.length && !failed) {
        try {
          await extractOne(files[next++]!);
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
    return { entries: files.length, bytes: bytesTotal, held, ...(manifest ? { manifest } : {}), ...(inflaterUsed ? { inflater: inflaterUsed } : {}) };
  } finally {
    inflater.close();
    await zip.close().catch(() => {});
  }
}

/** Entries to try `held.take` on, of those the manifest lists; their bytes are left out of the source's read-ahead. */
async function entriesMayHold(
  entries: Entry[],
  files: FileEntry[],
  listed: Map<string, { size: number }>,
  held: HeldEntries,
  source: ArchiveSourceReader,
): Promise<Set<FileEntry>> {
  const found = new Set<FileEntry>();
  let next = 0;
  const look = async () => {
    while (next < files.length) {
      const entry = files[next++]!;
      const size = listed.get(entry.filename)?.size;
      if (size !== undefined && (await held.mayHold(entry.filename, size))) found.add(entry);
    }
  };
  await Promise.all(Array.from({ length: HOLD_CHECKS }, look));
  // Each from its local header to where its data must end, never into the next entry.
  const byOffset = [...entries].sort((a, b) => a.offset - b.offset);
  const ranges = byOffset.flatMap((entry, i): [number, number][] => {
    if (!found.has(entry as FileEntry)) return [];
    const next = byOffset[i + 1]?.offset ?? source.size;
    return [[entry.offset, Math.min(next, entry.offset + 30 + entry.rawFilename.length + entry.compressedSize)]];
  });
  source.skip?.(ranges);
  return found;
}

/**
 * The central directory's entries. The file's head is looked at only when they cannot be read (to say it is no
 * zip) and by `checkHead` later: a remote source fetches a whole window for it, which should wait until the
 * entries to skip are known.
 */
async function listEntries(zip: ZipReader<unknown>, source: ArchiveSourceReader): Promise<Entry[]> {
  try {
    return await zip.getEntries();
  } catch (error) {
    if (isFaultOutsideArchive(error)) throw error;
    await checkHead(source);
    // zip.js refuses traversal names itself; report them with the same words as our own path check.
    if ((error as Error)?.message === ERR_UNSAFE_FILENAME) {
      const name = String((error as { filename?: unknown }).filename ?? "");
      throw new InvalidBackupError(entryPathProblem(name) ?? `The entry ${JSON.stringify(name)} has an unsafe path.`);
    }
    throw new InvalidBackupError("The zip archive is truncated or corrupt: its central directory cannot be read.");
  }
}

async function checkHead(source: ArchiveSourceReader): Promise<void> {
  if (!looksLikeZip(await source.read(0, 4))) throw new InvalidBackupError("The file is not a zip archive.");
}

/** Everything that can be judged from the central directory alone, before a byte is extracted. */
function checkStructure(entries: Entry[], archiveSize: number, limits: ArchiveLimits): FileEntry[] {
  if (entries.length > limits.maxEntries) throw new InvalidBackupError(`The archive has more than ${limits.maxEntries} entries.`);
  const seen = new Set<string>();
  const files: FileEntry[] = [];
  let total = 0;
  for (const entry of entries) {
    const name = entry.directory ? entry.filename.replace(/\/$/, "") : entry.filename;
    const problem = entryPathProblem(name);
    if (problem) throw new InvalidBackupError(problem);
    if (((entry.externalFileAttributes >>> 16) & FILE_TYPE_MASK) === SYMLINK_MODE) {
      throw new InvalidBackupError(`The entry ${JSON.stringify(name)} is a symbolic link.`);
    }
    if (seen.has(name)) throw new InvalidBackupError(`The entry ${JSON.stringify(name)} appears twice.`);
    seen.add(name);
    if (entry.directory) continue;
    if (entry.encrypted) throw new InvalidBackupError(`The entry ${JSON.stringify(name)} is encrypted.`);
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
      throw new InvalidBackupError(`The entry ${JSON.stringify(name)} uses an unsupported compression method.`);
    }
    const { uncompressedSize: size, compressedSize } = entry;
    const bomb = zipBombProblem(name, size, compressedSize, limits);
    if (bomb) throw new InvalidBackupError(bomb);
    if (compressedSize > archiveSize) throw new InvalidBackupError(`The entry ${JSON.stringify(name)} is larger than the archive: it is truncated.`);
    total += size;
    if (total > limits.maxTotalBytes) throw new InvalidBackupError("The archive expands beyond the size limit: refused as a zip bomb.");
    if (name !== MANIFEST_PATH) files.push(entry as FileEntry);
  }
  if (!seen.has("data.db") || files.every((f) => f.filename !== "data.db")) {
    throw new InvalidBackupError("The archive has no data.db at its root.");
  }
  return files;
}

async function readManifest(entries: Entry[]): Promise<Manifest | undefined> {
  const entry = entries.find((e) => e.filename === MANIFEST_PATH && !e.directory) as FileEntry | undefined;
  if (!entry) return undefined;
  if (entry.uncompressedSize > 256 * 1024 * 1024) throw new InvalidBackupError("The manifest is too large.");
  const chunks: Uint8Array[] = [];
  try {
    await entry.getData(new WritableStream({ write: (chunk) => void chunks.push(chunk) }), { checkCrc32: true });
  } catch (error) {
    throw toInvalid(error, MANIFEST_PATH);
  }
  const parsed = parseManifest(new TextDecoder().decode(Buffer.concat(chunks)));
  if ("problem" in parsed) throw new InvalidBackupError(parsed.problem);
  return parsed.manifest;
}

function checkManifestListing(manifest: Manifest, files: FileEntry[]): void {
  const listed = new Map(manifest.entries.map((e) => [e.path, e]));
  for (const file of files) {
    const entry = listed.get(file.filename);
    if (!entry) throw new InvalidBackupError(`The entry ${file.filename} is not listed in the manifest.`);
    if (entry.size !== file.uncompressedSize) throw new InvalidBackupError(`The size of ${file.filename} does not match the manifest.`);
    listed.delete(file.filename);
  }
  const missing = listed.keys().next();
  if (!missing.done) throw new InvalidBackupError(`The entry ${missing.value} listed in the manifest is missing.`);
}

/**
 * Whether `error` is a failure around the archive rather than in it: the store it is read from, the inflate
 * workers, the place its entries are written to, or a cancel. Such an error is passed on as it is. Why: reported
 * as "corrupt", a good backup might be deleted; a restore that ran out of disk must say so.
 */
export function isFaultOutsideArchive(error: unknown): boolean {
  return error instanceof StorageError || error instanceof WorkerPoolError || error instanceof EntryWriteError || (error as Error)?.name === "AbortError";
}

function toInvalid(error: unknown, name: string): Error {
  if (error instanceof InvalidBackupError || isFaultOutsideArchive(error)) return error as Error;
  const message = String((error as Error)?.message ?? error);
  if (/crc|signature|incorrect|invalid/i.test(message)) return new InvalidBackupError(`The entry ${name} is corrupt: its CRC-32 does not match.`);
  return new InvalidBackupError(`The entry ${name} cannot be read: the archive is corrupt or truncated.`);
}

/**
 * Entries read at once. Small files wait on the disk (open, mkdir, write) more than on a core, so while data.db
 * fills one lane, two more keep the storage files moving: extracting the bench's archive took 1.98–2.45 s
 * (median 2.13) with three lanes against 2.31–2.55 s (median 2.42) with two, runs alternated; four were slower.
 */
const LANES = 3;

/** `mayHold` questions asked at once (each a few file system calls). */
const HOLD_CHECKS = 16;

/** Bytes read from the source at a time: big reads keep a remote or local source efficient. */
const READ_SIZE = 4 * 1024 * 1024;

/**
 * An entry's data as checked bytes, for extraction and for verification: zip.js's check that its data
 * overlaps no other entry's, then the data itself, never more than the header declares, and at the end
 * exactly that much with a matching CRC-32 (the runtime's native one). Throws `InvalidBackupError` naming the
 * entry for those; errors of the source or of inflating pass through as they are. `blocks`, from the manifest,
 * lets the entry inflate block by block in parallel when it fits the entry, on `inflater` (node:zlib's pool by
 * default). Each chunk is lent: the caller must be done with it (hashed, written) before it asks for the next.
 */
export async function* checkedEntryData(
  source: ArchiveSourceReader,
  entry: FileEntry,
  blocks?: DeflateBlocks,
  inflater?: BlockInflater,
): AsyncGenerator<Uint8Array> {
  await entry.getData(new WritableStream(), { checkOverlappingEntryOnly: true });
  const declared = entry.uncompressedSize;
  let seen = 0;
  let crc = 0;
  for await (const chunk of entryData(source, entry, blocks, inflater)) {
    seen += chunk.length;
    if (seen > declared) throw new InvalidBackupError(`The entry ${entry.filename} is corrupt: it holds more data than its header declares.`);
    crc = crc32(chunk, crc);
    yield chunk;
  }
  if (seen !== declared) throw new InvalidBackupError(`The entry ${entry.filename} is corrupt: it is shorter than its header declares.`);
  if ((crc >>> 0) !== ((entry.crc32 ?? entry.signature ?? 0) >>> 0)) {
    throw new InvalidBackupError(`The entry ${entry.filename} is corrupt: its CRC-32 does not match.`);
  }
}

/**
 * An entry's data, inflated if need be, read straight from the source in big pieces. zip.js still parses the
 * central directory and checks overlaps; its own data path (stream plumbing, CRC-32 in JavaScript) was most of
 * a restore's time. The CRC-32 is checked by the caller with the runtime's native one.
 */
async function* entryData(source: ArchiveSourceReader, entry: FileEntry, blocks?: DeflateBlocks, inflater?: BlockInflater): AsyncGenerator<Uint8Array> {
  const head = await source.read(entry.offset, 30);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < 30 || view.getUint32(0, true) !== 0x04034b50) {
    throw new InvalidBackupError(`The entry ${entry.filename} cannot be read: its local header signature is missing.`);
  }
  const start = entry.offset + 30 + view.getUint16(26, true) + view.getUint16(28, true);
  const end = start + entry.compressedSize;
  if (end > source.size) throw new InvalidBackupError(`The entry ${entry.filename} cannot be read: the archive is truncated.`);
  async function* raw() {
    for (let at = start; at < end; at += READ_SIZE) {
      const length = Math.min(READ_SIZE, end - at);
      const bytes = await source.read(at, length);
      if (bytes.length !== length) throw new InvalidBackupError(`The entry ${entry.filename} cannot be read: the archive is truncated.`);
      yield bytes;
    }
  }
  if (entry.compressionMethod === 0) {
    yield* raw();
    return;
  }
  // Blocks inflate in one call each on other threads (`inflater`, or node:zlib's pool), several at once, beside
  // this thread's hashing and writing.
  const plan = blockPlan(blocks, entry.uncompressedSize, entry.compressedSize);
  if (plan) {
    yield* inflateBlocks((offset, length) => source.read(start + offset, length), plan, entry.uncompressedSize, entry.filename, inflater);
    return;
  }
  const stream = zlib.createInflateRaw({ chunkSize: 1024 * 1024 });
  const feeding = (async () => {
    for await (const chunk of raw()) {
      if (!stream.write(chunk)) await once(stream, "drain");
    }
    stream.end();
  })();
  feeding.catch((error) => stream.destroy(error));
  try {
    for await (const chunk of stream) yield chunk as Uint8Array;
    await feeding;
  } finally {
    stream.destroy();
  }
}

/** zip.js's view of a random-access source. */
export function toZipReader(source: ArchiveSourceReader): Reader<unknown> {
  const reader = new Reader<unknown>(undefined);
  reader.size = source.size;
  reader.readUint8Array = (index, length) => source.read(index, length);
  return reader;
}
