/**
 * Checking a stored archive for `verify`: the same rules as a restore (`archive-checks.ts`), but every problem
 * is collected instead of stopping at the first, and the whole archive's SHA-256 is compared with the one stored
 * beside it.
 */
import { EntryWriteError } from "../errors.ts";
import { DigestingSource, SHA256_MISMATCH } from "./archive-digest.ts";
import { DEFAULT_LIMITS, entryReadError, inspectArchive, isFaultOutsideArchive, openZip, type ArchiveLimits } from "./archive-checks.ts";
import { hasherFor, openBlockInflater } from "./engine/index.ts";
import { checkedEntryData, openEntryKey } from "./entry-data.ts";
import { listedManifest, type ListedManifest } from "./archive-entries.ts";
import type { ReadProgress } from "./read-archive.ts";
import type { ArchiveSourceReader } from "./zip/index.ts";

export interface VerifyArchiveOptions {
  /** The archive's SHA-256 as the store kept it (hex); a different one is a problem. */
  expectedSha256?: string;
  limits?: ArchiveLimits;
  /** Where an entry's bytes go while they are checked (e.g. `data.db` to a temp file); undefined drops them. */
  sink?: (path: string, size: number) => Promise<WritableStream<Uint8Array> | undefined>;
  /**
   * The archive's SHA-256 computed beside these reads, where reading it again is cheap (a local file's digest
   * thread, `RandomAccessSource.sha256BesideReaders`); taken from the reads themselves when absent.
   */
  sha256?: Promise<string>;
  signal?: AbortSignal;
  onProgress?: (progress: ReadProgress & { phase: "hashing" | "verifying" }) => void;
  /** The key of an encrypted archive (`ReadArchiveOptions.password`). */
  password?: string;
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
  manifest?: ListedManifest;
  /** Paths whose bytes went to a sink and checked out (CRC-32, size and, with a manifest, SHA-256). */
  intact: string[];
}

/**
 * Checks a stored archive without stopping at the first problem: the central directory and the manifest
 * (`inspectArchive`), every readable entry streamed once through its CRC-32 and SHA-256, and the whole archive's
 * SHA-256 against the stored one, taken from the same reads (`DigestingSource`) unless it is given. Web streams, node:crypto and
 * zip.js only, so it runs on Deno too. An encrypted archive without its key throws `EncryptedBackupError`.
 */
export async function verifyArchive(source: ArchiveSourceReader, options: VerifyArchiveOptions = {}): Promise<VerifyReport> {
  const digesting = options.sha256 ? undefined : new DigestingSource(source);
  const reader = digesting ?? source;
  const zip = openZip(reader);
  const inflater = openBlockInflater();
  const entryKey = openEntryKey(options.password);
  try {
    const inspection = await inspectArchive(zip, reader, options.limits ?? DEFAULT_LIMITS, entryKey.key);
    const { files, bytes, manifest, problems, keyError } = inspection;
    // Not a problem of the archive: without its key the verify cannot say whether it has one, so it fails instead.
    if (keyError) throw keyError;
    const intact: string[] = [];
    let bytesTotal = 0;
    for (let i = 0; i < files.count; i++) if (inspection.readable(i)) bytesTotal += files.uncompressedSize(i);
    let bytesDone = 0;
    let entriesDone = 0;
    const report = (phase: "hashing" | "verifying") =>
      options.onProgress?.({ phase, bytesDone, bytesTotal, entriesDone, entriesTotal: files.count });

    // Every entry's bytes, once, through the checks a restore makes (`checkedEntryData`) and a SHA-256.
    for (let i = 0; i < files.count; i++) {
      if (!inspection.readable(i)) continue;
      options.signal?.throwIfAborted();
      const entry = files.at(i);
      const declared = entry.uncompressedSize;
      const hash = hasherFor(inflater.hashing, declared);
      const target = await options.sink?.(entry.filename, declared);
      const writer = target?.getWriter();
      let seen = 0;
      let failed = false;
      try {
        for await (const chunk of checkedEntryData(reader, entry, inspection, files.listedBlocks(i), inflater, entryKey.key)) {
          options.signal?.throwIfAborted();
          seen += chunk.length;
          bytesDone += chunk.length;
          await hash.update(chunk);
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
        problems.push(entryReadError(error, entry.filename).message);
      }
      entriesDone++;
      bytesDone += Math.max(0, declared - seen);
      report("verifying");
      if (failed) continue;
      const listedSha256 = files.listedSha256(i);
      if (listedSha256 !== undefined && listedSha256 !== (await hash.digest())) {
        problems.push(`The checksum of ${entry.filename} does not match the manifest.`);
        continue;
      }
      intact.push(entry.filename);
    }

    // The whole file, against the checksum the store kept beside it: the strongest finding, so it comes first.
    report("hashing");
    const sha256 = await (options.sha256 ?? digesting!.sha256(options.signal));
    if (options.expectedSha256 && options.expectedSha256 !== sha256) problems.unshift(SHA256_MISMATCH);
    return { ok: problems.length === 0, entries: files.count, bytes, sha256, problems, intact, ...(manifest ? { manifest: listedManifest(manifest, files) } : {}) };
  } catch (error) {
    digesting?.stop();
    throw error;
  } finally {
    inflater.close();
    entryKey.close();
    await zip.close().catch(() => {});
  }
}
