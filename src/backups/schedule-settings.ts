import type { DatabaseHandle } from "../db/database-handle.ts";

/** The part of the backups settings the scheduler reads (SPEC.md §4): a cron expression, "" for none. */
export interface BackupSchedule {
  cron: string;
  cronMaxKeep: number;
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

const PARAMS_ID = "settings";

/**
 * Reads `{backups: {cron, cronMaxKeep}}` from the `settings` row of `_params` (where the settings routes
 * keep the backups section as JSON), and writes it back preserving every other key. Until the settings
 * routes are merged this is the only writer; then `set` is replaced by theirs and `reload` by their notice.
 */
export class ParamsScheduleSettings implements ScheduleSettings {
  #listeners = new Set<(schedule: BackupSchedule) => void>();

  constructor(private readonly db: DatabaseHandle) {}

  async get(): Promise<BackupSchedule> {
    const backups = (await this.#readAll()).backups as Partial<BackupSchedule> | undefined;
    return {
      cron: typeof backups?.cron === "string" ? backups.cron : NO_SCHEDULE.cron,
      cronMaxKeep: typeof backups?.cronMaxKeep === "number" && backups.cronMaxKeep >= 1 ? backups.cronMaxKeep : NO_SCHEDULE.cronMaxKeep,
    };
  }

  async set(schedule: Partial<BackupSchedule>): Promise<void> {
    const all = await this.#readAll();
    const backups = { ...(all.backups as Record<string, unknown> | undefined), ...schedule };
    await this.db.client.execute({
      sql: "INSERT INTO _params (id, value, updated) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET value = excluded.value, updated = excluded.updated",
      args: [PARAMS_ID, JSON.stringify({ ...all, backups }), new Date().toISOString()],
    });
    await this.reload();
  }

  /** Tells listeners to read again (after a change, or after a restore replaced the database). */
  async reload(): Promise<void> {
    const schedule = await this.get();
    for (const listener of this.#listeners) listener(schedule);
  }

  onChange(listener: (schedule: BackupSchedule) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #readAll(): Promise<Record<string, unknown>> {
    const result = await this.db.client.execute({ sql: "SELECT value FROM _params WHERE id = ?", args: [PARAMS_ID] });
    const value = result.rows[0]?.[0];
    if (typeof value !== "string") return {};
    try {
      const parsed = JSON.parse(value) as unknown;
      return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
}
