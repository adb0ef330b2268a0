/**
 * The rules an archive must pass before anything in it is trusted, written once for every reader: an upload's
 * check, a restore and a verify. A consistent zip structure (zip.js's strict mode: the end record's count, the
 * central directory's size and offset, zip64 records, no duplicate names, each local header agreeing with its
 * central record), safe paths, plain files, sane sizes, `data.db` at the root and, where there is a manifest,
 * exactly the entries it lists with the sizes it lists. `inspectArchive` collects every problem: a restore stops
 * at the first, a verify reports them all. Encryption: every entry WinZip AES-256 (AE-2) or none, opened with the
 * key the caller has, and a missing or wrong key is an `EncryptedBackupError`, never a corrupt archive.
 *
 * Why strict: an archive whose end record counts fewer entries than its central directory holds reads as a
 * smaller archive to a lenient reader. With the manifest among the entries left out, it passed as a PocketBase
 * zip and its restore deleted every upload.
 */
import {
  ERR_AMBIGUOUS_ARCHIVE,
  ERR_INVALID_AUTHENTICATION_CODE,
  ERR_INVALID_PASSWORD,
  ERR_UNSAFE_FILENAME,
  ZipReader,
  type Entry,
  type FileEntry,
} from "@zip.js/zip.js";
import { collectGarbage } from "../collect-garbage.ts";
import { EncryptedBackupError, EntryWriteError, InvalidBackupError, StorageError } from "../errors.ts";
import { ArchiveEntries } from "./archive-entries.ts";
import { concatBytes, WorkerPoolError } from "./engine/index.ts";
import { EntryRanges } from "./local-headers.ts";
import type { ManifestHeader } from "./manifest-entries.ts";
import { MANIFEST_PATH, parseManifest, type Manifest, type ManifestEntry } from "./manifest.ts";
import {
  AES_SALT_BYTES,
  AES_VERIFIER_BYTES,
  aesVerifierMatches,
  configureZip,
  END_OF_CENTRAL_SIGNATURE,
  entryPathProblem,
  LOCAL_HEADER_BYTES,
  LOCAL_HEADER_SIGNATURE,
  toZipReader,
  ZIP64_LOCATOR_SIGNATURE,
  type ArchiveSourceReader,
} from "./zip/index.ts";

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

/** The manifest is read whole into memory: larger than this, it is refused rather than read. */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

const SYMLINK_MODE = 0o120000;
const FILE_TYPE_MASK = 0o170000;

/** Why an entry of these sizes is refused as a zip bomb, if it is. */
export function zipBombProblem(name: string, size: number, compressedSize: number, limits: ArchiveLimits): string | undefined {
  if (size <= limits.ratioFloorBytes || size <= Math.max(compressedSize, 1) * limits.maxRatio) return undefined;
  return `The entry ${JSON.stringify(name)} claims to expand more than ${limits.maxRatio} times, more than deflate can: refused as a zip bomb.`;
}

/** Whether the bytes start like a zip (local header or an empty archive's end record). */
export function looksLikeZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b &&
    ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}

/**
 * zip.js over `source`, as every reader here opens it: strict (an archive other tools could read differently is
 * refused, see the file's header), CRC-32s and overlapping entries checked, no web workers of its own.
 */
export function openZip(source: ArchiveSourceReader): ZipReader<unknown> {
  configureZip();
  return new ZipReader(toZipReader(source), { strictness: "strict", checkCrc32: true, checkOverlappingEntry: true, useWebWorkers: false });
}

/** An encrypted archive without a key to open it: an `EncryptedBackupError`. */
export const NO_KEY_PROBLEM = "The backup is encrypted and no key is configured to open it.";
/** An encrypted archive whose password verifiers refuse the key: an `EncryptedBackupError`. */
export const WRONG_KEY_PROBLEM = "The backup is encrypted and the configured key does not open it.";

/** Whether an entry is encrypted the one way readers here open: WinZip AES-256, AE-2, stored or deflated. */
export function isAes256Entry(entry: Entry): boolean {
  const aes = (entry as { extraFieldAES?: { vendorVersion?: number; strength?: number } }).extraFieldAES;
  return entry.encrypted && aes?.vendorVersion === 2 && aes.strength === 3 && (entry.compressionMethod === 0 || entry.compressionMethod === 8);
}

/** What the reader has to open an encrypted archive with. */
export interface ArchiveKey {
  /** The password every entry of an encrypted archive must open with; ignored by a plain archive. */
  password?: string;
}

/** What the central directory and the manifest say, and every problem found in them. */
export interface ArchiveInspection {
  /** File entries in central-directory order, the manifest not among them, packed; with what the manifest lists for each. */
  files: ArchiveEntries;
  /** Whether entry `i`'s bytes may be read (false once a problem was found with it). */
  readable(i: number): boolean;
  /** Uncompressed bytes of those entries. */
  bytes: number;
  /** The manifest's fields other than its entries (those are in `files`), where the archive has a readable one. */
  manifest?: ManifestHeader;
  problems: string[];
  /** Whether the archive's entries are WinZip AES-256 encrypted (and so read with the key). */
  encrypted: boolean;
  /** An encrypted archive without its key: what to throw (its message also leads `problems`); nothing else was read. */
  keyError?: EncryptedBackupError;
  /** Where the central directory starts: no entry's data may reach past it. */
  directoryOffset: number;
  /** Where the entries to be read begin (the readable files and the manifest), to hold each one's bytes apart. */
  ranges: EntryRanges;
}

/**
 * Everything that can be judged before an entry's bytes are read: the structure, every entry's path, type, method
 * and sizes, `data.db`, and the manifest against the central directory. Failures around the archive (the store,
 * a cancel) are thrown, never listed as problems of the archive.
 * zip.js's entries are taken one at a time from its central directory and packed (`ArchiveEntries`), never held
 * all at once: for 50 000 entries they were about 150 MB of objects.
 */
export async function inspectArchive(
  zip: ZipReader<unknown>,
  source: ArchiveSourceReader,
  limits: ArchiveLimits = DEFAULT_LIMITS,
  key: ArchiveKey = {},
): Promise<ArchiveInspection> {
  const problems: string[] = [];
  const listing = await listEntries(zip, source, limits, problems);
  if (!listing) return { files: new ArchiveEntries(), readable: () => false, bytes: 0, problems, encrypted: false, directoryOffset: 0, ranges: new EntryRanges(new Float64Array()) };
  const { files, unreadable, bytes, encrypted, firstEntries, manifestEntry } = listing;
  const directoryOffset = zip.directoryOffset ?? source.size;
  const endProblem = await endRecordProblem(source);
  // Ahead of the entries' problems, where it always was: a restore reports the first.
  if (endProblem) problems.unshift(endProblem);
  const password = key.password || undefined;
  const inspection = { files, bytes, problems, encrypted, directoryOffset };
  if (encrypted) {
    const keyError = await keyProblem(firstEntries, source, password);
    if (keyError) {
      problems.unshift(keyError.message);
      return { ...inspection, readable: () => false, keyError, ranges: new EntryRanges(new Float64Array()) };
    }
  }
  const manifest = manifestEntry && (await readManifest(manifestEntry, problems, encrypted ? password : undefined));
  if (manifest) problems.push(...listingProblems(manifest, files));
  // The manifest's text and objects are garbage now that its listing is in `files`: tens of MB for 50 000 entries.
  if (files.count >= COLLECT_EVERY_ENTRIES) collectGarbage();
  const starts: number[] = [];
  for (let i = 0; i < files.count; i++) if (!unreadable.has(i)) starts.push(files.offset(i));
  if (manifestEntry) starts.push(manifestEntry.offset);
  return {
    ...inspection,
    readable: (i) => !unreadable.has(i),
    ranges: new EntryRanges(Float64Array.from(starts)),
    ...(manifest ? { manifest: { format: manifest.format, createdAt: manifest.createdAt, producer: manifest.producer } } : {}),
  };
}

/** Entries whose password verifiers judge the key: most of them refusing it is a wrong key (see `keyProblem`). */
const KEY_SAMPLE = 3;

/**
 * Whether the key opens an encrypted archive, judged by the password verifiers of its first few entries before
 * anything is decrypted. A verifier is 2 bytes: one wrong key in 65,536 passes one, so most of the sample must
 * refuse the key for it to be wrong; an entry refusing a key the others take is corrupt (found when it is read).
 */
async function keyProblem(entries: Entry[], source: ArchiveSourceReader, password: string | undefined): Promise<EncryptedBackupError | undefined> {
  if (password === undefined) return new EncryptedBackupError(NO_KEY_PROBLEM);
  const sample = entries.filter((e) => !e.directory).slice(0, KEY_SAMPLE);
  const verdicts = await Promise.all(sample.map(async (entry) => {
    const header = await aesHeader(source, entry);
    return header && aesVerifierMatches(password, header);
  }));
  const refused = verdicts.filter((v) => v === false).length;
  return refused > verdicts.filter((v) => v === true).length ? new EncryptedBackupError(WRONG_KEY_PROBLEM) : undefined;
}

/** An AES entry's salt and verifier, found through its local header; undefined where those are not there to read. */
async function aesHeader(source: ArchiveSourceReader, entry: Entry): Promise<Uint8Array | undefined> {
  const head = await source.read(entry.offset, LOCAL_HEADER_BYTES);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < LOCAL_HEADER_BYTES || view.getUint32(0, true) !== LOCAL_HEADER_SIGNATURE) return undefined;
  const length = AES_SALT_BYTES + AES_VERIFIER_BYTES;
  if (entry.compressedSize < length) return undefined;
  const header = await source.read(entry.offset + LOCAL_HEADER_BYTES + view.getUint16(26, true) + view.getUint16(28, true), length);
  return header.length === length ? header : undefined;
}

/** What one pass over the central directory found; its entries' problems are already in `problems`. */
interface Listing {
  files: ArchiveEntries;
  /** Files with a problem: their bytes are not read. */
  unreadable: Set<number>;
  bytes: number;
  encrypted: boolean;
  /** The first few entries that are not folders, for `keyProblem`. */
  firstEntries: Entry[];
  manifestEntry?: FileEntry;
}

/**
 * The central directory's entries, checked one by one as zip.js yields them and packed, or undefined with the
 * reason in `problems` when zip.js refuses the directory (its strict checks end the pass: a duplicate name, a
 * count that disagrees, is only known at its end).
 */
async function listEntries(zip: ZipReader<unknown>, source: ArchiveSourceReader, limits: ArchiveLimits, problems: string[]): Promise<Listing | undefined> {
  const checks = new EntryChecks(source.size, limits);
  try {
    for await (const entry of zip.getEntriesGenerator()) {
      checks.add(entry);
      // Each zip.js entry is garbage once packed, about 3 KB of it, and the collector lets it pile up.
      if (checks.count % COLLECT_EVERY_ENTRIES === 0) collectGarbage();
    }
  } catch (error) {
    if (isFaultOutsideArchive(error)) throw error;
    if (!looksLikeZip(await source.read(0, 4))) problems.push("The file is not a zip archive.");
    else if ((error as Error)?.message === ERR_UNSAFE_FILENAME) {
      // zip.js refuses traversal names itself; report them with the same words as our own path check.
      const name = String((error as { filename?: unknown }).filename ?? "");
      problems.push(entryPathProblem(name) ?? `The entry ${JSON.stringify(name)} has an unsafe path.`);
    } else if ((error as Error)?.message === ERR_AMBIGUOUS_ARCHIVE) problems.push(await ambiguityProblem(source, error));
    else problems.push("The zip archive is truncated or corrupt: its central directory cannot be read.");
    return undefined;
  }
  return checks.finish(problems);
}

/**
 * Words for zip.js's strict refusal. A duplicate name is named: a lenient second listing (only on this failure
 * path) finds it.
 */
async function ambiguityProblem(source: ArchiveSourceReader, error: unknown): Promise<string> {
  const reason = String((error as { reason?: unknown }).reason ?? "inconsistent records");
  if (reason === "duplicate filename") {
    const lenient = new ZipReader(toZipReader(source), { strictness: "balanced", useWebWorkers: false });
    const names = await lenient.getEntries().then((entries) => entries.map((e) => e.filename), () => [] as string[]);
    await lenient.close().catch(() => {});
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) return `The entry ${JSON.stringify(twice)} appears twice.`;
  }
  return `The zip archive is inconsistent (${reason}): its records disagree, so zip tools could read it differently. It is damaged or was altered.`;
}

/**
 * What zip.js does not hold against an end record: that its comment reaches exactly to the end of the file, and
 * its disk fields. An archive of one file is disk 0 with all its entries on it; an end record (or zip64 end
 * record) saying otherwise is a count that disagrees with itself.
 */
async function endRecordProblem(source: ArchiveSourceReader): Promise<string | undefined> {
  const tailStart = Math.max(0, source.size - END_RECORD - MAX_COMMENT);
  const tail = await source.read(tailStart, source.size - tailStart);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let end = -1;
  for (let at = tail.length - END_RECORD; at >= 0 && end < 0; at--) {
    if (view.getUint32(at, true) === END_OF_CENTRAL_SIGNATURE && at + END_RECORD + view.getUint16(at + 20, true) === tail.length) end = at;
  }
  // zip.js found one, so its comment length is what is wrong: bytes cut off, or bytes appended.
  if (end < 0) return "The zip archive's end record does not end the file: the archive is truncated or has data appended.";
  const problem = "The zip archive is inconsistent (its end record's disk fields): its records disagree, so zip tools could read it differently. It is damaged or was altered.";
  const [disk, directoryDisk, onDisk, total] = [4, 6, 8, 10].map((at) => view.getUint16(end + at, true));
  if (onDisk !== total || (disk !== 0 && disk !== 0xffff) || (directoryDisk !== 0 && directoryDisk !== 0xffff)) return problem;
  const locator = end - ZIP64_LOCATOR;
  if (locator < 0 || view.getUint32(locator, true) !== ZIP64_LOCATOR_SIGNATURE) return undefined;
  if (view.getUint32(locator + 4, true) !== 0 || view.getUint32(locator + 16, true) !== 1) return problem;
  const record = await source.read(Number(view.getBigUint64(locator + 8, true)), ZIP64_END_RECORD);
  if (record.length < ZIP64_END_RECORD) return problem;
  const r = new DataView(record.buffer, record.byteOffset, record.byteLength);
  if (r.getUint32(16, true) !== 0 || r.getUint32(20, true) !== 0 || r.getBigUint64(24, true) !== r.getBigUint64(32, true)) return problem;
  return undefined;
}

const END_RECORD = 22;
const MAX_COMMENT = 0xffff;
const ZIP64_LOCATOR = 20;
const ZIP64_END_RECORD = 56;

/** Entries packed between two collections of the garbage they leave (a collection takes a few ms). */
const COLLECT_EVERY_ENTRIES = 10_000;

/** The checks of each entry's central record (path, type, method, sizes), one entry at a time. */
class EntryChecks {
  readonly #files = new ArchiveEntries();
  readonly #unreadable = new Set<number>();
  readonly #seen = new Set<string>();
  readonly #problems: string[] = [];
  readonly #firstEntries: Entry[] = [];
  readonly #sealed = { aes: 0, plain: 0, other: 0 };
  #manifestEntry: FileEntry | undefined;
  #count = 0;
  #bytes = 0;

  constructor(
    private readonly archiveSize: number,
    private readonly limits: ArchiveLimits,
  ) {}

  /** Entries seen so far. */
  get count(): number {
    return this.#count;
  }

  add(entry: Entry): void {
    // Entries past the limit are counted, not checked: the archive is refused for their number.
    if (++this.#count > this.limits.maxEntries) return;
    const problems = this.#problems;
    const name = entry.directory ? entry.filename.replace(/\/$/, "") : entry.filename;
    const before = problems.length;
    const pathProblem = entryPathProblem(name);
    if (pathProblem) problems.push(pathProblem);
    if (((entry.externalFileAttributes >>> 16) & FILE_TYPE_MASK) === SYMLINK_MODE) problems.push(`The entry ${JSON.stringify(name)} is a symbolic link.`);
    if (this.#seen.has(name)) problems.push(`The entry ${JSON.stringify(name)} appears twice.`);
    this.#seen.add(name);
    if (entry.directory) return;
    if (this.#firstEntries.length < KEY_SAMPLE) this.#firstEntries.push(entry);
    // ZipCrypto, AES-128 or -192, AE-1, strong encryption: refused as before.
    if (entry.encrypted && !isAes256Entry(entry)) {
      problems.push(`The entry ${JSON.stringify(name)} is encrypted.`);
      this.#sealed.other++;
    }
    if (!entry.encrypted) this.#sealed.plain++;
    else if (isAes256Entry(entry)) this.#sealed.aes++;
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) problems.push(`The entry ${JSON.stringify(name)} uses an unsupported compression method.`);
    const { uncompressedSize: size, compressedSize } = entry;
    const bomb = zipBombProblem(name, size, compressedSize, this.limits);
    if (bomb) problems.push(bomb);
    if (compressedSize > this.archiveSize) problems.push(`The entry ${JSON.stringify(name)} is larger than the archive: it is truncated.`);
    if (name === MANIFEST_PATH) {
      this.#manifestEntry ??= entry as FileEntry;
      return;
    }
    this.#bytes += size;
    const i = this.#files.add(entry);
    if (problems.length !== before) this.#unreadable.add(i);
  }

  /** The archive-wide verdicts, once every entry is in; the entries' problems go to `problems`. */
  finish(problems: string[]): Listing {
    const files = this.#files;
    if (this.#count > this.limits.maxEntries) problems.push(`The archive has more than ${this.limits.maxEntries} entries.`);
    problems.push(...this.#problems);
    if (this.#bytes > this.limits.maxTotalBytes) problems.push("The archive expands beyond the size limit: refused as a zip bomb.");
    let hasDatabase = false;
    for (let i = 0; i < files.count && !hasDatabase; i++) hasDatabase = files.filename(i) === "data.db";
    if (!hasDatabase) problems.push("The archive has no data.db at its root.");
    const { aes, plain, other } = this.#sealed;
    if (aes && plain) problems.push("The archive mixes encrypted and plain entries: it is damaged or was altered.");
    return {
      files,
      unreadable: this.#unreadable,
      bytes: this.#bytes,
      encrypted: aes > 0 && plain === 0 && other === 0,
      firstEntries: this.#firstEntries,
      ...(this.#manifestEntry ? { manifestEntry: this.#manifestEntry } : {}),
    };
  }
}

async function readManifest(entry: FileEntry, problems: string[], password: string | undefined): Promise<Manifest | undefined> {
  if (entry.uncompressedSize > MAX_MANIFEST_BYTES) {
    problems.push("The manifest is too large.");
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  try {
    await entry.getData(new WritableStream({ write: (chunk) => void chunks.push(chunk) }), { checkCrc32: true, ...(password !== undefined ? { password } : {}) });
  } catch (error) {
    problems.push(entryReadError(error, MANIFEST_PATH).message);
    return undefined;
  }
  const parsed = parseManifest(new TextDecoder().decode(concatBytes(chunks)));
  if ("problem" in parsed) {
    problems.push(parsed.problem);
    return undefined;
  }
  return parsed.manifest;
}

/**
 * The manifest and the central directory must list exactly the same files, with the same sizes. What the
 * manifest lists for each file goes into its record (`setListed`); the parsed manifest is dropped after this.
 */
function listingProblems(manifest: Manifest, files: ArchiveEntries): string[] {
  const problems: string[] = [];
  const listed = new Map<string, ManifestEntry>();
  for (const item of manifest.entries) listed.set(item.path, item);
  const present = new Set<string>();
  for (let i = 0; i < files.count; i++) {
    const filename = files.filename(i);
    present.add(filename);
    const item = listed.get(filename);
    if (!item) problems.push(`The entry ${filename} is not listed in the manifest.`);
    else {
      if (item.size !== files.uncompressedSize(i)) problems.push(`The size of ${filename} does not match the manifest.`);
      files.setListed(i, item.sha256, item.deflateBlocks);
    }
  }
  for (const path of listed.keys()) if (!present.has(path)) problems.push(`The entry ${path} listed in the manifest is missing.`);
  if (listed.size !== manifest.entries.length) problems.push("The manifest lists an entry twice.");
  return problems;
}

/**
 * Whether `error` is a failure around the archive rather than in it: the store it is read from, the inflate
 * workers, the place its entries are written to, or a cancel. Such an error is passed on as it is. Why: reported
 * as "corrupt", a good backup might be deleted; a restore that ran out of disk must say so.
 */
export function isFaultOutsideArchive(error: unknown): boolean {
  return error instanceof StorageError || error instanceof WorkerPoolError || error instanceof EntryWriteError || (error as Error)?.name === "AbortError";
}

/**
 * What reading entry `name` failing means: the error itself when it is ours or outside the archive, else an
 * `InvalidBackupError` in words a user can act on.
 */
export function entryReadError(error: unknown, name: string): Error {
  if (error instanceof InvalidBackupError || isFaultOutsideArchive(error)) return error as Error;
  const message = String((error as Error)?.message ?? error);
  if (message === ERR_AMBIGUOUS_ARCHIVE) {
    const reason = String((error as { reason?: unknown }).reason ?? "mismatched local file header");
    return new InvalidBackupError(`The entry ${name} disagrees with its central directory record (${reason}): the archive is damaged or was altered.`);
  }
  // The key opened the archive's other entries (`keyProblem`): this entry's verifier or data was altered.
  if (message === ERR_INVALID_PASSWORD) return new InvalidBackupError(`The entry ${name} is corrupt: its password verifier does not match the archive's key.`);
  if (message === ERR_INVALID_AUTHENTICATION_CODE) return new InvalidBackupError(`The entry ${name} is corrupt: its authentication code does not match.`);
  if (/crc|signature/i.test(message)) return new InvalidBackupError(`The entry ${name} is corrupt: its CRC-32 does not match.`);
  if (/incorrect|invalid/i.test(message)) return new InvalidBackupError(`The entry ${name} is corrupt: its compressed data does not inflate.`);
  return new InvalidBackupError(`The entry ${name} cannot be read: the archive is corrupt or truncated.`);
}
