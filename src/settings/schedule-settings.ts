import type { RetentionPolicy } from "./retention-policy.ts";

/**
 * The part of the backups settings the scheduler reads (SPEC.md §4): a cron expression, "" for none, and what
 * to keep of its backups (`cronMaxKeep`, and the tiers beyond PocketBase).
 */
export interface BackupSchedule extends RetentionPolicy {
  cron: string;
}

/**
 * Where the scheduler reads its settings. A seam on purpose: the settings store (GET/PATCH /api/settings)
 * implements it, and tests use a plain object; `onChange` fires after every change that was saved.
 */
export interface ScheduleSettings {
  get(): Promise<BackupSchedule>;
  onChange(listener: (schedule: BackupSchedule) => void): () => void;
}

export const NO_SCHEDULE: BackupSchedule = { cron: "", cronMaxKeep: 3 };

/** Settings held in memory: for tests and for the CLI. */
export class MemoryScheduleSettings implements ScheduleSettings {
  #listeners = new Set<(schedule: BackupSchedule) => void>();

  constructor(private schedule: BackupSchedule = NO_SCHEDULE) {}

  async get(): Promise<BackupSchedule> {
    return { ...this.schedule };
  }

  async set(schedule: Partial<BackupSchedule>): Promise<void> {
    this.schedule = { ...this.schedule, ...schedule };
    for (const listener of this.#listeners) listener({ ...this.schedule });
  }

  onChange(listener: (schedule: BackupSchedule) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
