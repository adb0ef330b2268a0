import { lstat, mkdir, rm } from "node:fs/promises";
import type { DatabaseHandle } from "../db/database-handle.ts";
import { looksLikeZip, MAX_REUSABLE_PIECES, type PieceDeflaterName } from "../archive/index.ts";
import { Sha256Stream } from "../archive/zip/index.ts";
import { badRequest, InvalidBackupError, NotFoundError, validationFailed } from "../errors.ts";
import { formatPbDate } from "../pb-date.ts";
import { VERIFY_PAUSE_STEPS, type JobParams, type JobResults, type VerifyBackupResult } from "../jobs/job-messages.ts";
import type { JobContext } from "../jobs/create-backup-job.ts";
import type { JobKind, JobRecord, JobTracker } from "../jobs/job-tracker.ts";
import type { Logger } from "../logger.ts";
import type { BackupInfo, BackupStore, ByteRange, PendingWrite, StoreDescriptor } from "../store/backup-store.ts";
import { backupNameProblem, generateBackupName, NAME_TAKEN, UPLOAD_NAME_TAKEN, uploadKey, uploadKeyProblem } from "./backup-names.ts";
import { countLiveFiles } from "./live-file-count.ts";
import { dataDirPaths } from "../fs/data-dir.ts";
import { KeyReservedError, type JobLock, type LockHolder } from "./job-lock.ts";
import { swapInRestoredData, type SwapStep } from "./restore-swap.ts";

export type JobRunner = <P extends JobParams>(params: P, context?: JobContext) => Promise<JobResults[P["kind"]]>;

export interface BackupServiceDeps {
  dataDir: string;
  appName: string;
  producer: string;
  db: DatabaseHandle;
  lock: JobLock;
  jobs: JobTracker;
  log: Logger;
  /** The store backups live in now (local, or S3 when the settings enable it). */
  store: () => { store: BackupStore; descriptor: StoreDescriptor };
  runJob: JobRunner;
  /** Deflate level for compressible entries. */
  level?: number;
  /** What deflates at the fast levels (`deflate-workers.ts`): ISA-L where it loads, unless "libdeflate". */
  deflater?: PieceDeflaterName;
  restoreDelayMs: number;
  /** Free disk space a restore leaves to the app beside the restored data (`DEFAULT_RESTORE_RESERVE_BYTES`). */
  restoreReserveBytes?: number;
  /** Called once restored data is in place and the database is open again (rotates the token secret). */
  afterRestore: () => Promise<void>;
  /** Test hook: stop a restore at this step and wait to be killed. */
  pauseAt?: string;
  now?: () => Date;
  /**
   * The backup encryption keys (`BackupKeys`): new backups are encrypted with `current`; reads try `current`, then
   * `older`. None: backups are plain, and an encrypted one cannot be opened.
   */
  keys?: () => Promise<BackupKeys>;
}

/** The keys of encrypted backups: the one new backups use, and earlier ones that older backups may need. */
export interface BackupKeys {
  current?: string;
  older: string[];
}

/** A stored backup as the API lists it. */
export interface BackupListItem {
  key: string;
  size: number;
  modified: string;
}

/**
 * The backups service: what the routes, the scheduler and the CLI call. It owns the one-job lock and the
 * job records; archiving and extraction run through `runJob` (a worker thread in the server).
 */
export class BackupService {
  constructor(private readonly deps: BackupServiceDeps) {}

  get busy(): boolean {
    return this.deps.lock.busy;
  }

  async list(): Promise<BackupListItem[]> {
    const items = await this.deps.store().store.list();
    return items
      .sort((a, b) => b.modified.getTime() - a.modified.getTime())
      .map((item) => ({ key: item.key, size: item.size, modified: formatPbDate(item.modified) }));
  }

  /** Throws the busy error when a job runs: the create route checks this before it reads the body. */
  assertIdle(): void {
    this.deps.lock.assertFree();
  }

  /**
   * Validates the name (or generates one), then archives the data directory; returns when it is stored. The
   * lock comes first and the name is looked up under it, so an upload or a delete of the same key cannot come
   * in between; a key a delete is removing counts as taken.
   */
  async create(name: string | undefined, kind: Extract<JobKind, "create" | "scheduled"> = "create"): Promise<string> {
    this.assertIdle();
    const now = this.deps.now?.() ?? new Date();
    const key = name ? name : generateBackupName(this.deps.appName, now, kind === "scheduled");
    const checked = Boolean(name) && kind === "create";
    const release = this.#lockFor({ kind, key });
    // A delete of the key is in flight: the name is taken until it is done (the format rules still come first).
    if (!release) throw validationFailed({ name: (checked && backupNameProblem(key, true)) || NAME_TAKEN });
    try {
      const problem = checked ? backupNameProblem(key, await this.#exists(key)) : undefined;
      if (problem) throw validationFailed({ name: problem });
    } catch (error) {
      release();
      throw error;
    }
    return this.#runCreate(kind, key, release);
  }

  /** Archives the data directory under `key`, holding the lock `release` gives back. */
  async #runCreate(kind: Extract<JobKind, "create" | "scheduled">, key: string, release: () => void): Promise<string> {
    const job = this.deps.jobs.start(kind, key);
    try {
      const { store, descriptor } = this.deps.store();
      const keys = await this.#keys();
      // The job reads data.db's pages through the server's own descriptor of it (`DatabaseHandle.withPagesFd`).
      const result = await this.deps.db.withPagesFd((pagesFd) =>
        this.deps.runJob(
          {
            kind: "create",
            dataDir: this.deps.dataDir,
            store: descriptor,
            key,
            producer: this.deps.producer,
            level: this.deps.level ?? 2,
            ...(keys.current ? { password: keys.current } : {}),
            ...(this.deps.deflater ? { deflater: this.deps.deflater } : {}),
            ...(pagesFd !== undefined ? { databaseFds: { "data.db": pagesFd } } : {}),
          },
          { onProgress: (p) => this.deps.jobs.progress(job, p) },
        ),
      );
      store.expect(key, true); // the worker published it: listings here wait for it to show
      this.deps.jobs.finish(job);
      const { deflatedBytes, reusedBytes, skipped } = result.reuse;
      this.deps.log.info("backup created", { key, deflatedBytes, reusedBytes, ...(result.deflater ? { deflater: result.deflater } : {}) });
      if (skipped === "too large") {
        this.deps.log.warn("block reuse skipped: the backup is too large to index, the next backup deflates everything", { key, maxPieces: MAX_REUSABLE_PIECES });
      }
      return key;
    } catch (error) {
      this.deps.jobs.finish(job, error);
      this.deps.log.error("backup failed", error, { key });
      // The cause travels along for the scheduler's log and alert; the API answers with the message only.
      throw Object.assign(badRequest("Failed to create backup."), { cause: error });
    } finally {
      release();
    }
  }

  /**
   * Stores an uploaded archive under the basename of the client's file name, but only if it is a
   * restorable backup: the bytes stream into a pending store write, are checked there (zip by content,
   * paths, sizes, CRC-32s, manifest checksums, `data.db` present), and are published only when all is
   * well. A refused upload leaves nothing behind.
   */
  async upload(filename: string, body: ReadableStream<Uint8Array>): Promise<string> {
    this.assertIdle();
    const key = uploadKey(filename);
    const problem = uploadKeyProblem(key);
    if (problem) throw validationFailed({ file: problem });
    // Lock first, then the lookup (see `create`): a key a delete is removing counts as taken.
    const release = this.#lockFor({ kind: "upload", key });
    if (!release) throw validationFailed({ file: UPLOAD_NAME_TAKEN });
    try {
      if (await this.#exists(key)) throw validationFailed({ file: UPLOAD_NAME_TAKEN });
    } catch (error) {
      release();
      throw error;
    }
    const job = this.deps.jobs.start("upload", key);
    const { store, descriptor } = this.deps.store();
    let pending: PendingWrite | undefined;
    try {
      pending = await store.write(key);
      const hash = new Sha256Stream();
      let head = new Uint8Array(0);
      const sniff = new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, controller) => {
          if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
          this.deps.jobs.progress(job, { phase: "receiving", bytesDone: hash.bytes + chunk.length });
          controller.enqueue(chunk);
        },
      });
      await body.pipeThrough(sniff).pipeThrough(hash).pipeTo(pending.stream);
      if (!looksLikeZip(head)) {
        throw validationFailed({ file: { code: "validation_invalid_mime_type", message: `Failed to upload ${JSON.stringify(filename)} due to unsupported file type.` } });
      }
      // The check reads the whole archive back: a worker does it, so the server keeps answering meanwhile.
      await this.deps.runJob(
        { kind: "check", store: descriptor, key, pendingId: pending.id, ...(await this.#passwords()) },
        { onProgress: (p) => this.deps.jobs.progress(job, p) },
      );
      // Publishing can take long on its own: on S3, a copy of the checked temp object, part by part past 5 GiB.
      this.deps.jobs.progress(job, { phase: "storing" });
      await pending.commit(hash.digest());
      this.deps.jobs.finish(job);
      this.deps.log.info("backup uploaded", { key });
      return key;
    } catch (error) {
      await pending?.abort().catch(() => {});
      this.deps.jobs.finish(job, error);
      if (error instanceof InvalidBackupError) {
        this.deps.log.warn("upload refused", { key, reason: error.message });
        throw validationFailed({ file: { code: "validation_invalid_backup", message: error.message } });
      }
      throw error;
    } finally {
      release();
    }
  }

  async stat(key: string): Promise<BackupInfo> {
    return this.deps.store().store.stat(key);
  }

  async read(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    return this.deps.store().store.read(key, range);
  }

  /**
   * Deletes a backup, also while a job runs on another key. The key stays reserved until the delete is done:
   * meanwhile a restore, verify, upload or create of it is refused as if it were gone (or taken).
   */
  async delete(key: string): Promise<void> {
    let release: () => void;
    try {
      release = this.deps.lock.reserveKey(key);
    } catch (error) {
      if (error instanceof KeyReservedError) throw badRequest("The backup is currently being used and cannot be deleted.");
      throw error;
    }
    try {
      await this.deps.store().store.delete(key);
      this.deps.log.info("backup deleted", { key });
    } finally {
      release();
    }
  }

  /**
   * Checks the request and answers at once; the restore itself starts `restoreDelayMs` later and holds the
   * lock throughout. Its outcome is logged and kept as the last job.
   */
  async restore(key: string): Promise<void> {
    this.assertIdle();
    // Lock first, then the lookup: a delete of the key cannot slip in between the two (see `JobLock`).
    const release = this.#lockFor({ kind: "restore", key });
    if (!release) throw badRequest("Missing or invalid backup file."); // a delete of it is in flight
    try {
      await this.deps.store().store.stat(key);
    } catch (error) {
      release();
      if (error instanceof NotFoundError) throw badRequest("Missing or invalid backup file.");
      throw error;
    }
    const job = this.deps.jobs.start("restore", key);
    setTimeout(() => {
      this.#runRestore(key, job).finally(release);
    }, this.deps.restoreDelayMs);
  }

  async #runRestore(key: string, job: JobRecord): Promise<void> {
    const { dataDir, db, log } = this.deps;
    const paths = dataDirPaths(dataDir);
    try {
      await rm(paths.staging, { recursive: true, force: true });
      await mkdir(paths.staging, { recursive: true });
      const { descriptor } = this.deps.store();
      // Counted while the archive extracts (for the log line below), not after it, on the restore's way.
      const counting = countLiveFiles(dataDir);
      counting.catch(() => {});
      const extracted = await this.deps.runJob(
        {
          kind: "extract",
          store: descriptor,
          ...(await this.#passwords()),
          key,
          stagingDir: paths.staging,
          liveDir: dataDir,
          ...(this.deps.restoreReserveBytes !== undefined ? { reserveBytes: this.deps.restoreReserveBytes } : {}),
          ...(this.deps.pauseAt === "extracting" ? { pauseAt: "extracting" } : {}),
        },
        {
          onProgress: (p) => {
            this.deps.jobs.progress(job, p);
            if (p.phase === "paused") log.warn("restore paused at extracting");
          },
        },
      );
      await this.#pause("extracted");
      const liveFiles = await counting;
      if (extracted.entries < liveFiles) {
        log.warn("this restore removes more files than it brings", { key, liveFiles, restoredFiles: extracted.entries, hasManifest: extracted.hasManifest });
      }
      this.deps.jobs.progress(job, { phase: "swapping" });
      await db.reopenAround(() => swapInRestoredData(dataDir, (step: SwapStep) => this.#pause(step)));
      await this.deps.afterRestore();
      this.deps.jobs.finish(job);
      const inflater = extracted.inflater ? { inflater: extracted.inflater } : {};
      log.info("backup restored", { key, copiedFromLive: extracted.copiedFromLive.entries, ...inflater });
    } catch (error) {
      // Once the journal is written the swap is committed: its staged entries are the data the next start moves
      // in, so they stay (`recoverRestore`). Before that, the staging folder is only a failed attempt.
      const committed = await exists(paths.journal);
      if (!committed) await rm(paths.staging, { recursive: true, force: true }).catch(() => {});
      this.deps.jobs.finish(job, error);
      log.error(committed ? "restore failed during the swap; the next start finishes it" : "restore failed; the current data is unchanged", error, { key });
    }
  }

  /**
   * Verifies a stored archive under the job lock, in a worker, without touching live data. A missing key is
   * `NotFoundError`; problems with the archive are in the answer, not thrown.
   */
  async verify(key: string): Promise<VerifyBackupResult> {
    this.assertIdle();
    // Lock first, then the lookup (see `restore`); a key a delete is removing is not found.
    const release = this.#lockFor({ kind: "verify", key });
    if (!release) throw new NotFoundError(`Backup ${key} not found.`);
    try {
      await this.deps.store().store.stat(key);
    } catch (error) {
      release();
      throw error;
    }
    const job = this.deps.jobs.start("verify", key);
    try {
      const { descriptor } = this.deps.store();
      const pauseAt = VERIFY_PAUSE_STEPS.find((step) => step === this.deps.pauseAt);
      const result = await this.deps.runJob(
        {
          kind: "verify",
          store: descriptor,
          ...(await this.#passwords()),
          key,
          // Under the data directory's trash, which every start empties: a verify killed midway leaves nothing for long.
          tempDir: dataDirPaths(this.deps.dataDir).trash,
          ...(pauseAt ? { pauseAt } : {}),
        },
        {
          onProgress: (p) => {
            this.deps.jobs.progress(job, p);
            if (p.phase === "paused") this.deps.log.warn(`verify paused at ${pauseAt}`);
          },
        },
      );
      this.deps.jobs.finish(job, result.ok ? undefined : new Error(`${result.problems.length} problem(s) found: ${result.problems[0]}`));
      this.deps.log.info("backup verified", { key, ok: result.ok, problems: result.problems.length });
      return result;
    } catch (error) {
      this.deps.jobs.finish(job, error);
      throw error;
    } finally {
      release();
    }
  }

  /** Whether new backups are encrypted (a key is configured): the settings show it, never the key. */
  async encrypts(): Promise<boolean> {
    return Boolean((await this.#keys()).current);
  }

  async #keys(): Promise<BackupKeys> {
    return (await this.deps.keys?.()) ?? { older: [] };
  }

  /** The `passwords` of a read job: every key an encrypted archive may open with, the current one first. */
  async #passwords(): Promise<{ passwords?: string[] }> {
    const { current, older } = await this.#keys();
    const passwords = [...new Set([current, ...older].filter((k): k is string => Boolean(k)))];
    return passwords.length ? { passwords } : {};
  }

  /** Takes the job lock; undefined when a delete of the key is in flight (the caller answers as for its route). */
  #lockFor(holder: LockHolder): (() => void) | undefined {
    try {
      return this.deps.lock.acquire(holder);
    } catch (error) {
      if (error instanceof KeyReservedError) return undefined;
      throw error;
    }
  }

  async #exists(key: string): Promise<boolean> {
    try {
      await this.deps.store().store.stat(key);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  /** The crash tests' hook: log the step and wait forever, so the test can kill the process right here. */
  async #pause(step: string): Promise<void> {
    if (this.deps.pauseAt !== step) return;
    this.deps.log.warn(`restore paused at ${step}`);
    await new Promise(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}
