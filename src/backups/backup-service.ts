import { mkdir, rm } from "node:fs/promises";
import type { DatabaseHandle } from "../db/database-handle.ts";
import { badRequest, NotFoundError, validationFailed } from "../errors.ts";
import { formatPbDate } from "../pb-date.ts";
import type { JobParams, JobResults } from "../jobs/job-messages.ts";
import type { JobContext } from "../jobs/create-backup-job.ts";
import type { JobRecord, JobTracker } from "../jobs/job-tracker.ts";
import type { Logger } from "../logger.ts";
import type { BackupInfo, BackupStore, ByteRange, StoreDescriptor } from "../store/backup-store.ts";
import { backupNameProblem, generateBackupName } from "./backup-names.ts";
import { dataDirPaths } from "./data-dir.ts";
import type { JobKind, JobLock } from "./job-lock.ts";
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
  restoreDelayMs: number;
  /** Called once restored data is in place and the database is open again (rotates the token secret). */
  afterRestore: () => Promise<void>;
  /** Test hook: stop a restore at this step and wait to be killed. */
  pauseAt?: string;
  now?: () => Date;
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
    if (this.deps.lock.busy) this.deps.lock.acquire({ kind: "create", key: "" });
  }

  /** Validates the name (or generates one), then archives the data directory; returns when it is stored. */
  async create(name: string | undefined, kind: Extract<JobKind, "create" | "scheduled"> = "create"): Promise<string> {
    this.assertIdle();
    const now = this.deps.now?.() ?? new Date();
    const key = name ? name : generateBackupName(this.deps.appName, now, kind === "scheduled");
    if (name) {
      const problem = backupNameProblem(name, await this.#exists(name));
      if (problem) throw validationFailed({ name: problem });
    }
    const release = this.deps.lock.acquire({ kind, key });
    const job = this.deps.jobs.start(kind, key);
    try {
      const { descriptor } = this.deps.store();
      await this.deps.runJob(
        { kind: "create", dataDir: this.deps.dataDir, store: descriptor, key, producer: this.deps.producer, level: this.deps.level ?? 2 },
        { onProgress: (p) => this.deps.jobs.progress(job, p) },
      );
      this.deps.jobs.finish(job);
      this.deps.log.info("backup created", { key });
      return key;
    } catch (error) {
      this.deps.jobs.finish(job, error);
      this.deps.log.error("backup failed", error, { key });
      throw badRequest("Failed to create backup.");
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

  async delete(key: string): Promise<void> {
    if (this.deps.lock.holder?.key === key) throw badRequest("The backup is currently being used and cannot be deleted.");
    await this.deps.store().store.delete(key);
    this.deps.log.info("backup deleted", { key });
  }

  /**
   * Checks the request and answers at once; the restore itself starts `restoreDelayMs` later and holds the
   * lock throughout. Its outcome is logged and kept as the last job.
   */
  async restore(key: string): Promise<void> {
    this.assertIdle();
    try {
      await this.deps.store().store.stat(key);
    } catch (error) {
      if (error instanceof NotFoundError) throw badRequest("Missing or invalid backup file.");
      throw error;
    }
    const release = this.deps.lock.acquire({ kind: "restore", key });
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
      await this.deps.runJob(
        { kind: "extract", store: descriptor, key, stagingDir: paths.staging },
        { onProgress: (p) => this.deps.jobs.progress(job, p) },
      );
      await this.#pause("extracted");
      this.deps.jobs.progress(job, { phase: "swapping" });
      await db.close();
      try {
        await swapInRestoredData(dataDir, (step: SwapStep) => this.#pause(step));
      } finally {
        await db.open();
      }
      await this.deps.afterRestore();
      this.deps.jobs.finish(job);
      log.info("backup restored", { key });
    } catch (error) {
      await rm(paths.staging, { recursive: true, force: true }).catch(() => {});
      this.deps.jobs.finish(job, error);
      log.error("restore failed; the current data is unchanged", error, { key });
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
