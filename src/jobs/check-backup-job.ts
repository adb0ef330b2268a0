import { readdir } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { DigestingSource, readArchive, SHA256_MISMATCH, type HeldEntries } from "../archive/index.ts";
import { companionDatabaseOf } from "../fs/data-dir.ts";
import { DEFAULT_RESTORE_RESERVE_BYTES, freeSpaceProblem } from "../fs/free-space.ts";
import { quickCheckInWorker } from "../db/quick-check.ts";
import { InvalidBackupError } from "../errors.ts";
import { createStore } from "../store/create-store.ts";
import type { CheckBackupParams, CheckBackupResult, ExtractBackupParams } from "./job-messages.ts";
import type { JobContext } from "./create-backup-job.ts";
import { fileSink, type WrittenFile } from "./file-sink.ts";
import { canSyncFileSystem, syncFileSystem } from "../native/syncfs.ts";
import { withEachKey } from "./archive-keys.ts";
import { LiveCopies } from "./live-copies.ts";

/**
 * Reads a stored archive and checks every path and checksum; with a staging directory it also extracts
 * the entries there (files fsynced) and checks that the extracted `data.db` passes `PRAGMA quick_check`.
 * With `liveDir`, uploads that the data directory already holds unchanged are copied from it instead
 * (`live-copies.ts`).
 * Where the store kept the archive's SHA-256, the whole archive is hashed on the way and must match it: a
 * backup damaged in place is refused, not half restored. An extraction must end with exactly the archive's files
 * in the staging directory.
 * The caller owns the staging directory and removes it on failure.
 */
export function checkBackupJob(params: CheckBackupParams | ExtractBackupParams, context: JobContext = {}): Promise<CheckBackupResult> {
  return withEachKey(params.passwords, (password) => checkWithKey(params, context, password));
}

async function checkWithKey(params: CheckBackupParams | ExtractBackupParams, context: JobContext, password: string | undefined): Promise<CheckBackupResult> {
  const store = await createStore(params.store);
  const pending = params.kind === "check" && params.pendingId !== undefined;
  // An upload being checked has no stored checksum yet: it is computed as it arrives.
  const storedSha256 = pending ? undefined : (await store.stat(params.key)).sha256;
  const opened = pending ? await store.openPending(params.pendingId!) : await store.open(params.key);
  // The archive's SHA-256, proven before success: on a thread of its own where reading the file again is cheap
  // (a local store), else from the bytes the readers fetch (S3: each byte downloaded once).
  const besideReaders = storedSha256 ? opened.sha256BesideReaders?.() : undefined;
  const digesting = storedSha256 && !besideReaders ? new DigestingSource(opened) : undefined;
  const source = digesting ?? opened;
  const stagingDir = params.kind === "extract" ? params.stagingDir : undefined;
  const syncs = await BackgroundSyncs.for(stagingDir);
  let extracted = 0;
  // The staged data.db is checked as soon as it is written, on its own thread, while the rest extracts.
  let dbCheck: Promise<string[]> | undefined;
  // Not early when the archive holds SQLite's own files beside data.db (a PocketBase zip may): the check's
  // connection would read, fold in and delete a WAL or shm still being extracted.
  let checkEarly = true;
  const checkDatabase = (path: string) => {
    dbCheck = quickCheckInWorker(path).catch((error: Error) => [error.message]);
  };
  const checkFreeSpace = async (dir: string, bytes: number) => {
    const reserve = params.kind === "extract" ? (params.reserveBytes ?? DEFAULT_RESTORE_RESERVE_BYTES) : 0;
    const problem = await freeSpaceProblem(dir, bytes, reserve);
    if (problem) throw new Error(problem);
  };
  const pauseIfAsked = async () => {
    if (params.kind === "extract" && params.pauseAt === "extracting" && extracted > 0) {
      context.onProgress?.({ phase: "paused", bytesDone: 0, bytesTotal: 0, entriesDone: extracted, entriesTotal: 0 });
      await new Promise(() => {});
    }
    extracted++;
  };
  const extractTo = async (path: string, size: number) => {
    await pauseIfAsked();
    const target = join(stagingDir!, path);
    // Handed to `syncs` once written (`syncs.flush()` fsyncs all of them before the restore commits, and a later
    // rename publishes whole files): the guarantee of an fsync per file in sequence, without the waits.
    return fileSink(target, {
      mode: 0o644,
      size,
      writeBehind: true,
      finish: async (file, bytes) => {
        if (path === "data.db" && checkEarly) checkDatabase(target);
        await syncs.add(file, bytes);
      },
    });
  };
  const liveCopies = params.kind === "extract" && params.liveDir ? new LiveCopies(params.liveDir) : undefined;
  const held: HeldEntries | undefined = liveCopies && {
    mayHold: (path, size) => liveCopies.mayHold(path, size),
    take: async (path, size, sha256) => {
      await pauseIfAsked();
      const copy = await liveCopies.copy(path, join(stagingDir!, path), size, sha256);
      if (copy) await syncs.add(copy, size);
      return copy !== undefined;
    },
  };
  try {
    const report = await readArchive(source, {
      ...(context.signal ? { signal: context.signal } : {}),
      onProgress: (p) => context.onProgress?.({ phase: stagingDir ? "extracting" : "checking", ...p }),
      ...(stagingDir ? { sink: extractTo, beforeEntries: (bytes: number, paths: string[]) => {
        checkEarly = !paths.some((path) => companionDatabaseOf(path) === "data.db");
        return checkFreeSpace(stagingDir, bytes);
      } } : {}),
      ...(held ? { held } : {}),
      ...(password ? { password } : {}),
    });
    const archiveSha256 = besideReaders?.done ?? digesting?.sha256(context.signal);
    const archiveCheck = archiveSha256 && checkArchiveSha256(archiveSha256, storedSha256!);
    if (stagingDir) {
      context.onProgress?.({ phase: "checking database", bytesDone: report.bytes, bytesTotal: report.bytes, entriesDone: report.entries, entriesTotal: report.entries });
      // Every staged file is durable before the job reports success, so before the swap's journal is written;
      // the last flushes overlap with the database check and the archive's checksum.
      if (!dbCheck) checkDatabase(join(stagingDir, "data.db"));
      const [problems] = await Promise.all([dbCheck!, syncs.flush(), archiveCheck]);
      if (problems.length) throw new InvalidBackupError(`The restored data.db fails its integrity check: ${problems.slice(0, 3).join("; ")}`);
      await checkStagedFiles(stagingDir, report.paths);
    } else await archiveCheck;
    const inflater = report.inflater ? { inflater: report.inflater } : {};
    return { entries: report.entries, bytes: report.bytes, hasManifest: report.manifest !== undefined, copiedFromLive: report.held, ...inflater };
  } finally {
    besideReaders?.stop();
    digesting?.stop();
    await syncs.settle();
    await dbCheck; // the caller may remove the staging folder next
    await opened.close();
  }
}

/**
 * SQLite's own files beside a database the archive holds (`data.db-shm`, `data.db-wal`): the integrity check's
 * connection may leave them in the staging folder, or fold an archive's own into the database and remove them.
 * Neither an extra file nor a missing one.
 */
function isDatabaseCompanion(path: string, paths: string[]): boolean {
  const database = !path.includes("/") && companionDatabaseOf(path);
  return Boolean(database) && paths.includes(database as string);
}

async function checkArchiveSha256(sha256: Promise<string>, expected: string): Promise<void> {
  if ((await sha256) !== expected) throw new InvalidBackupError(SHA256_MISMATCH);
}

/**
 * The staging directory must hold exactly the archive's files, each where its path says: a check of the result,
 * independent of the reader that made it, so that no reader bug can ever swap in less than the archive holds.
 */
async function checkStagedFiles(stagingDir: string, paths: string[]): Promise<void> {
  const staged = new Set<string>();
  for (const entry of await readdir(stagingDir, { recursive: true, withFileTypes: true })) {
    if (entry.isDirectory()) continue;
    const path = relative(stagingDir, join(entry.parentPath, entry.name)).split(sep).join("/");
    if (!entry.isFile()) throw new InvalidBackupError(`The restore staged ${path}, which is not a regular file: refused.`);
    if (isDatabaseCompanion(path, paths)) continue;
    staged.add(path);
  }
  const expected = paths.filter((path) => !isDatabaseCompanion(path, paths));
  const missing = expected.filter((path) => !staged.has(path));
  if (missing.length || staged.size !== expected.length) {
    throw new InvalidBackupError(
      `The restore staged ${staged.size} files where the archive holds ${paths.length}${missing.length ? ` (${missing[0]} is missing)` : ""}: refused, the current data is unchanged.`,
    );
  }
}

/**
 * Makes the written files durable before the job succeeds; `flush` waits for all of it. Large files are fsynced in
 * the background as soon as they are written, one at a time in the order they were written, so their write-back
 * overlaps the rest of the extraction. Small files, where the runtime can call it (`native/syncfs.ts`), are left
 * to one `syncfs` of the staging folder's file system at the end, which also covers the folders; else they are
 * fsynced like the large ones.
 *
 * Why: an fsync per file costs a round trip to the disk per file, and a restore of tens of thousands of small
 * uploads spent most of its time in them; one syncfs writes the same data and metadata out in one go, with the
 * same guarantee once it returns (PostgreSQL offers the same for its recovery). But leaving everything to the end
 * would start the write-back of a large database only once all of it is extracted, and the restore would wait for
 * all of it at once. Why one at a time and no waiting: the extraction used to wait once 8 fsyncs were in flight,
 * so it went at the disk's pace file by file, and parallel fsyncs held the thread pool that also inflates (the
 * bench's archive: 2.46–2.60 s that way, 2.32–2.49 s this way, alternating runs). Only when `MAX_QUEUED` files are
 * waiting (a slow disk) does the extraction wait, so open files stay bounded.
 */
class BackgroundSyncs {
  static readonly MAX_QUEUED = 256;
  /** Files from this size on are fsynced as they are written; smaller ones wait for the syncfs. */
  static readonly EARLY_SYNC_BYTES = 1024 * 1024;
  readonly #queued: Promise<void>[] = [];
  #last: Promise<void> = Promise.resolve();
  #error: unknown;

  private constructor(private readonly syncFsOf: string | undefined) {}

  /** Syncs for files written under `dir` (small ones by one syncfs of its file system where that works). */
  static async for(dir: string | undefined): Promise<BackgroundSyncs> {
    return new BackgroundSyncs(dir && (await canSyncFileSystem()) ? dir : undefined);
  }

  async add(file: WrittenFile, bytes: number): Promise<void> {
    if (this.syncFsOf && bytes < BackgroundSyncs.EARLY_SYNC_BYTES) {
      await file.close(); // its pages are written out by `flush`
      return;
    }
    const done = this.#last.then(() => file.sync()).finally(() => file.close());
    this.#last = done.catch((error) => {
      this.#error ??= error;
    });
    this.#queued.push(this.#last);
    while (this.#queued.length > BackgroundSyncs.MAX_QUEUED) await this.#queued.shift();
    if (this.#error !== undefined) throw this.#error;
  }

  /** Waits for every file to be durable; throws the first failure. */
  async flush(): Promise<void> {
    await this.#last;
    this.#queued.length = 0;
    if (this.#error !== undefined) throw this.#error;
    if (this.syncFsOf) await syncFileSystem(this.syncFsOf);
  }

  /** Waits for everything in flight, ignoring failures (for cleanup paths). */
  async settle(): Promise<void> {
    await this.#last;
  }
}
