import type { Cron } from "croner";
import { BackupBusyError, redactPaths } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { generateBackupName } from "./backup-names.ts";
import type { BackupSchedule, ScheduleSettings } from "../settings/schedule-settings.ts";
import { applyRetention, hasTiers, type RetentionDecision, type RetentionPolicy } from "../settings/retention-policy.ts";
import { toCron } from "../settings/cron.ts";

/** Time and timers, injectable so tests drive the scheduler with a fake clock. */
export interface SchedulerClock {
  now(): Date;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: SchedulerClock = {
  now: () => new Date(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** What the scheduler needs from the backups service (BackupService fits). */
export interface ScheduledBackupTarget {
  /** Archives the data directory under `key` through the job lock; throws `BackupBusyError` when a job runs. */
  create(key: string, kind: "scheduled"): Promise<string>;
  list(): Promise<{ key: string; modified: string }[]>;
  delete(key: string): Promise<void>;
}

export interface SchedulerDeps {
  settings: ScheduleSettings;
  backups: ScheduledBackupTarget;
  appName: string;
  log: Logger;
  clock?: SchedulerClock;
  /** `PB_BACKUPS_ALERT_WEBHOOK`: failed scheduled backups are POSTed here as JSON. */
  alertWebhook?: string;
  fetch?: typeof fetch;
}

/** How one scheduled run ended. */
export interface ScheduledRun {
  key: string;
  at: string;
  outcome: "created" | "failed" | "skipped";
  error?: string;
  pruned: string[];
}

export const AUTO_PREFIX = "@auto_pb_backup_";

/**
 * What `policy` keeps and deletes of the scheduled backups stored now, deleting nothing: the next prune's answer,
 * and the dry run behind `GET /api/settings/backups/retention`.
 */
export async function previewRetention(backups: { list(): Promise<{ key: string; modified: string }[]> }, policy: RetentionPolicy): Promise<RetentionDecision> {
  // `cronMaxKeep` alone orders by modification time, as PocketBase. The tiers go by the run time the name holds:
  // a day's backup stays that day's after a copy to another bucket or a re-upload gives it a new mtime.
  const byName = hasTiers(policy);
  const autos = (await backups.list())
    .filter((item) => item.key.startsWith(AUTO_PREFIX))
    .map((item) => ({ key: item.key, at: (byName && runTimeOf(item.key)) || new Date(item.modified.replace(" ", "T")) }));
  return applyRetention(autos, policy);
}

/** The UTC run time in a scheduled backup's name (`…_20260301020000.zip`), if it holds one. */
export function runTimeOf(key: string): Date | undefined {
  const m = /_(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.zip$/.exec(key);
  if (!m) return undefined;
  const at = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(at.getTime()) ? undefined : at;
}
// setTimeout holds at most ~24.8 days; longer waits are taken in steps, re-reading the clock each time.
const MAX_WAIT_MS = 60 * 60 * 1000;

/**
 * Runs scheduled backups: croner computes the next UTC run time from the settings, our own timer waits for
 * it (so a fake clock works), and each run creates `@auto_pb_backup_<app>_<time>.zip` through the service
 * (same job path and lock as the API), then prunes old auto backups, whether or not the backup succeeded.
 * A run that finds a job running is skipped and logged. Settings changes re-arm the timer.
 */
export class BackupScheduler {
  readonly #clock: SchedulerClock;
  #cron: Cron | undefined;
  #schedule: BackupSchedule | undefined;
  #timer: unknown;
  #stopped = true;
  #unsubscribe: (() => void) | undefined;
  #running: Promise<ScheduledRun> | undefined;
  #last: ScheduledRun | undefined;
  #next: Date | undefined;
  #runListeners = new Set<(run: ScheduledRun) => void>();

  constructor(private readonly deps: SchedulerDeps) {
    this.#clock = deps.clock ?? systemClock;
  }

  /** The next run time, or undefined when no schedule is set. */
  get nextRun(): Date | undefined {
    return this.#next;
  }

  /** The last run's outcome. */
  get lastRun(): ScheduledRun | undefined {
    return this.#last;
  }

  /** Resolves once the run in progress (if any) ends; for shutdown and tests. */
  async idle(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  onRun(listener: (run: ScheduledRun) => void): () => void {
    this.#runListeners.add(listener);
    return () => this.#runListeners.delete(listener);
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#unsubscribe = this.deps.settings.onChange((schedule) => this.#apply(schedule));
    this.#apply(await this.deps.settings.get());
  }

  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#disarm();
  }

  #apply(schedule: BackupSchedule): void {
    this.#schedule = schedule;
    this.#disarm();
    this.#cron = undefined;
    if (this.#stopped || !schedule.cron.trim()) return;
    try {
      this.#cron = toCron(schedule.cron);
    } catch (error) {
      this.deps.log.error("scheduled backups are off: the cron expression is invalid", error, { cron: schedule.cron });
      return;
    }
    this.#arm();
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#next = undefined;
  }

  #arm(): void {
    if (this.#stopped || !this.#cron) return;
    const next = this.#cron.nextRun(this.#clock.now());
    if (!next) return;
    this.#next = next;
    this.#wait(next);
  }

  #wait(next: Date): void {
    const delay = Math.max(0, next.getTime() - this.#clock.now().getTime());
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#clock.now().getTime() < next.getTime()) return this.#wait(next);
      // Arm the following run first: a run that outlasts the interval makes the next one find the lock held.
      this.#arm();
      void this.runNow(next);
    }, Math.min(delay, MAX_WAIT_MS));
  }

  /** One scheduled run, named after `at` (the scheduled time). */
  runNow(at: Date = this.#clock.now()): Promise<ScheduledRun> {
    const run = this.#run(at);
    this.#running = run;
    return run;
  }

  async #run(at: Date): Promise<ScheduledRun> {
    const { backups, log } = this.deps;
    const key = generateBackupName(this.deps.appName, at, true);
    const run: ScheduledRun = { key, at: at.toISOString(), outcome: "created", pruned: [] };
    try {
      await backups.create(key, "scheduled");
      log.info("scheduled backup created", { key });
    } catch (error) {
      if (error instanceof BackupBusyError) {
        run.outcome = "skipped";
        log.warn("scheduled backup skipped: another backup/restore is running", { key });
        return this.#done(run);
      }
      const cause = (error as Error & { cause?: unknown }).cause ?? error;
      run.outcome = "failed";
      run.error = redactPaths(cause instanceof Error ? cause.message : String(cause));
      log.error("scheduled backup failed", cause, { key });
      await this.#alert(run);
    }
    // Retention runs after failures too: a failing schedule must not be the reason old auto backups pile up.
    run.pruned = await this.#prune();
    return this.#done(run);
  }

  #done(run: ScheduledRun): ScheduledRun {
    this.#last = run;
    for (const listener of this.#runListeners) listener(run);
    return run;
  }

  /**
   * Deletes the auto backups the retention policy does not keep (`applyRetention`: the newest `cronMaxKeep`, or
   * the tiers when any is set); manual and uploaded ones are never touched.
   */
  async #prune(): Promise<string[]> {
    const pruned: string[] = [];
    try {
      const { remove } = await previewRetention(this.deps.backups, this.#schedule ?? (await this.deps.settings.get()));
      for (const key of remove) {
        try {
          await this.deps.backups.delete(key);
          pruned.push(key);
        } catch (error) {
          this.deps.log.error("could not prune an old scheduled backup", error, { key });
        }
      }
      if (pruned.length) this.deps.log.info("old scheduled backups pruned", { keys: pruned });
    } catch (error) {
      this.deps.log.error("could not list backups to prune", error);
    }
    return pruned;
  }

  async #alert(run: ScheduledRun): Promise<void> {
    const url = this.deps.alertWebhook;
    if (!url) return;
    const body = { event: "scheduled_backup_failed", app: this.deps.appName, key: run.key, at: run.at, error: run.error };
    try {
      const response = await (this.deps.fetch ?? fetch)(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) this.deps.log.error("the alert webhook answered with an error", undefined, { status: response.status });
    } catch (error) {
      this.deps.log.error("the alert webhook could not be reached", error);
    }
  }
}
