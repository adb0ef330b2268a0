import { createHash } from "node:crypto";
import { ZipReader, type Entry, type FileEntry } from "@zip.js/zip.js";
import { EntryWriteError, InvalidBackupError } from "../errors.ts";
import { concatBytes } from "./concat-bytes.ts";
import { entryPathProblem } from "./entry-paths.ts";
import { MANIFEST_PATH, parseManifest, type Manifest } from "./manifest.ts";
import {
  checkedEntryData,
  DEFAULT_LIMITS,
  isFaultOutsideArchive,
  looksLikeZip,
  zipBombProblem,
  toZipReader,
  type ArchiveLimits,
  type ArchiveSourceReader,
  type ReadProgress,
} from "./read-archive.ts";
import { openBlockInflater } from "./runtime.ts";
import { Sha256Stream } from "./sha256-stream.ts";
import { configureZip } from "./zip-config.ts";

export interface VerifyArchiveOptions {
  /** The archive's SHA-256 as the store kept it (hex); a different one is a problem. */
  expectedSha256?: string;
  limits?: ArchiveLimits;
  /** Where an entry's bytes go while they are checked (e.g. `data.db` to a temp file); undefined drops them. */
  sink?: (path: string, size: number) => Promise<WritableStream<Uint8Array> | undefined>;
  signal?: AbortSignal;
  onProgress?: (progress: ReadProgress & { phase: "hashing" | "verifying" }) => void;
}

/** What a verification found: every problem, each naming the entry (or the archive) it concerns. */
export interface VerifyReport {
  ok: boolean;
  /** File entries, the manifest not counted. */
  entries: number;
  /** Uncompressed bytes of those entries. */
  bytes: number;
  /** Hex SHA-256 of the whole archive as read. */
  sha256: string;
  problems: string[];
  manifest?: Manifest;
  /** Paths whose bytes went to a sink and checked out (CRC-32, size and, with a manifest, SHA-256). */
  intact: string[];
}

const SYMLINK_MODE = 0o120000;
const FILE_TYPE_MASK = 0o170000;
const CHUNK = 1024 * 1024;

/**
 * Checks a stored archive without stopping at the first problem, for `verify`: the whole-file SHA-256
 * against the stored one, then the central directory (paths, symlinks, duplicates, encryption, methods,
 * sizes), the manifest (listing, sizes), and every entry streamed once through its CRC-32 and SHA-256.
 * Unlike `readArchive`, which guards extraction and throws at the first problem, this collects them all.
 * Web streams, node:crypto and zip.js only, so it runs on Deno too.
 */
export async function verifyArchive(source: ArchiveSourceReader, options: VerifyArchiveOptions = {}): Promise<VerifyReport> {
  configureZip();
  const limits = options.limits ?? DEFAULT_LIMITS;
  const problems: string[] = [];
  const intact: string[] = [];
  const zip = new ZipReader(toZipReader(source), { checkCrc32: true, checkOverlappingEntry: true, useWebWorkers: false });
  const inflater = openBlockInflater();
  try {
    let entries: Entry[] = [];
    const head = await source.read(0, 4);
    if (!looksLikeZip(head)) problems.push("The file is not a zip archive.");
    else {
      try {
        entries = await zip.getEntries();
      } catch (error) {
        if (isFaultOutsideArchive(error)) throw error;
        problems.push("The zip archive is truncated or corrupt: its central directory cannot be read.");
      }
    }
    const { files, bytes } = checkEntries(entries, source.size, limits, problems);
    const checkable = files.filter((f) => f.check);
    const bytesTotal = source.size + checkable.reduce((sum, f) => sum + f.entry.uncompressedSize, 0);
    let bytesDone = 0;
    let entriesDone = 0;
    const report = (phase: "hashing" | "verifying") =>
      options.onProgress?.({ phase, bytesDone, bytesTotal, entriesDone, entriesTotal: files.length });

    // 1. The whole file, streamed in order, against the checksum the store kept beside it.
    const sha256 = await hashSource(source, options.signal, (n) => {
      bytesDone += n;
      report("hashing");
    });
    if (options.expectedSha256 && options.expectedSha256 !== sha256) {
      problems.push("The archive's SHA-256 does not match the one stored with it: the file changed after it was written.");
    }

    // 2. The manifest and what it lists.
    const manifest = entries.length ? await readManifest(entries, problems) : undefined;
    const listed = new Map(manifest?.entries.map((e) => [e.path, e]));
    if (manifest) {
      const present = new Set(files.map((f) => f.entry.filename));
      for (const { entry } of files) {
        const item = listed.get(entry.filename);
        if (!item) problems.push(`The entry ${entry.filename} is not listed in the manifest.`);
        else if (item.size !== entry.uncompressedSize) problems.push(`The size of ${entry.filename} does not match the manifest.`);
      }
      for (const path of listed.keys()) if (!present.has(path)) problems.push(`The entry ${path} listed in the manifest is missing.`);
    }

    // 3. Every entry's bytes, once, through the checks a restore makes (`checkedEntryData`) and a SHA-256.
    for (const { entry, check } of files) {
      options.signal?.throwIfAborted();
      if (!check) continue;
      const declared = entry.uncompressedSize;
      const hash = createHash("sha256");
      const target = await options.sink?.(entry.filename, declared);
      const writer = target?.getWriter();
      let seen = 0;
      let failed = false;
      try {
        for await (const chunk of checkedEntryData(source, entry, listed.get(entry.filename)?.deflateBlocks, inflater)) {
          options.signal?.throwIfAborted();
          seen += chunk.length;
          bytesDone += chunk.length;
          hash.update(chunk);
          await writer?.write(chunk).catch((error) => {
            throw new EntryWriteError(entry.filename, error);
          });
          report("verifying");
        }
        await writer?.close().catch((error) => {
          throw new EntryWriteError(entry.filename, error);
        });
      } catch (error) {
        await writer?.abort(error).catch(() => {});
        // Not a problem of the archive: the verify cannot say whether it has one, so it fails instead.
        if (isFaultOutsideArchive(error)) throw error;
        failed = true;
        problems.push(error instanceof InvalidBackupError ? error.message : describeReadError(error, entry.filename));
      }
      entriesDone++;
      bytesDone += Math.max(0, declared - seen);
      report("verifying");
      if (failed) continue;
      const item = listed.get(entry.filename);
      if (item && item.sha256 !== hash.digest("hex")) {
        problems.push(`The checksum of ${entry.filename} does not match the manifest.`);
        continue;
      }
      intact.push(entry.filename);
    }
    return { ok: problems.length === 0, entries: files.length, bytes, sha256, problems, intact, ...(manifest ? { manifest } : {}) };
  } finally {
    inflater.close();
    await zip.close().catch(() => {});
  }
}

interface CheckedEntry {
  entry: FileEntry;
  /** False when the entry's bytes must not be read (unsafe path, encrypted, a zip bomb...). */
  check: boolean;
}

function checkEntries(entries: Entry[], archiveSize: number, limits: ArchiveLimits, problems: string[]) {
  if (entries.length > limits.maxEntries) problems.push(`The archive has more than ${limits.maxEntries} entries.`);
  const seen = new Set<string>();
  const files: CheckedEntry[] = [];
  let bytes = 0;
  for (const entry of entries.slice(0, limits.maxEntries)) {
    const name = entry.directory ? entry.filename.replace(/\/$/, "") : entry.filename;
    const before = problems.length;
    const pathProblem = entryPathProblem(name);
    if (pathProblem) problems.push(pathProblem);
    if (((entry.externalFileAttributes >>> 16) & FILE_TYPE_MASK) === SYMLINK_MODE) problems.push(`The entry ${JSON.stringify(name)} is a symbolic link.`);
    if (seen.has(name)) problems.push(`The entry ${JSON.stringify(name)} appears twice.`);
    seen.add(name);
    if (entry.directory || name === MANIFEST_PATH) continue;
    if (entry.encrypted) problems.push(`The entry ${JSON.stringify(name)} is encrypted.`);
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) problems.push(`The entry ${JSON.stringify(name)} uses an unsupported compression method.`);
    const { uncompressedSize: size, compressedSize } = entry;
    const bomb = zipBombProblem(name, size, compressedSize, limits);
    if (bomb) problems.push(bomb);
    if (compressedSize > archiveSize) problems.push(`The entry ${JSON.stringify(name)} is larger than the archive: it is truncated.`);
    bytes += size;
    files.push({ entry: entry as FileEntry, check: problems.length === before });
  }
  if (bytes > limits.maxTotalBytes) problems.push("The archive expands beyond the size limit: refused as a zip bomb.");
  if (entries.length && !files.some((f) => f.entry.filename === "data.db")) problems.push("The archive has no data.db at its root.");
  return { files, bytes };
}

async function readManifest(entries: Entry[], problems: string[]): Promise<Manifest | undefined> {
  const entry = entries.find((e) => e.filename === MANIFEST_PATH && !e.directory) as FileEntry | undefined;
  if (!entry) return undefined;
  if (entry.uncompressedSize > 256 * 1024 * 1024) {
    problems.push("The manifest is too large.");
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  try {
    await entry.getData(new WritableStream({ write: (chunk) => void chunks.push(chunk) }), { checkCrc32: true });
  } catch (error) {
    if (isFaultOutsideArchive(error)) throw error;
    problems.push(describeReadError(error, MANIFEST_PATH));
    return undefined;
  }
  const parsed = parseManifest(new TextDecoder().decode(concatBytes(chunks)));
  if ("problem" in parsed) {
    problems.push(parsed.problem);
    return undefined;
  }
  return parsed.manifest;
}

async function hashSource(source: ArchiveSourceReader, signal: AbortSignal | undefined, onBytes: (n: number) => void): Promise<string> {
  let offset = 0;
  const hash = new Sha256Stream();
  const file = new ReadableStream<Uint8Array>({
    async pull(controller) {
      signal?.throwIfAborted();
      if (offset >= source.size) return controller.close();
      const chunk = await source.read(offset, Math.min(CHUNK, source.size - offset));
      if (chunk.length === 0) return controller.error(new Error("The archive ended early while it was read."));
      offset += chunk.length;
      onBytes(chunk.length);
      controller.enqueue(chunk);
    },
  });
  await file.pipeThrough(hash).pipeTo(new WritableStream());
  return hash.digest();
}

function describeReadError(error: unknown, name: string): string {
  const message = String((error as Error)?.message ?? error);
  if (/crc|signature/i.test(message)) return `The entry ${name} is corrupt: its CRC-32 does not match.`;
  return `The entry ${name} cannot be read: the archive is corrupt or truncated.`;
}
