import { createClient, type Client } from "@libsql/client";
import { existsSync } from "node:fs";
import * as v from "valibot";
import type { RetentionTiers } from "./retention-policy.ts";
import type { BackupSchedule, ScheduleSettings } from "./schedule-settings.ts";
import { BUSY_TIMEOUT_MS, type DatabaseHandle } from "../db/database-handle.ts";
import type { S3Settings } from "../store/store-selector.ts";

/** The backups section of the settings (SPEC.md §4), as stored: the S3 secret included. */
export interface BackupsSettings extends RetentionTiers {
  cron: string;
  cronMaxKeep: number;
  /**
   * Beyond PocketBase: the key new backups are encrypted with. Write-only, like the S3 secret; "" in a change
   * removes it, and without one it is not stored (PocketBase's shape stays).
   */
  encryptionKey?: string;
  s3: S3Settings;
}

export const DEFAULT_BACKUPS_SETTINGS: BackupsSettings = {
  cron: "",
  cronMaxKeep: 3,
  s3: { enabled: false, bucket: "", region: "", endpoint: "", accessKey: "", secret: "", forcePathStyle: false },
};

/**
 * A JSON object and nothing else: valibot's `object` also takes arrays, which a section of the settings must
 * not be (PocketBase, decoding into a Go struct, refuses them as data it cannot load).
 */
const plainObject = <const E extends v.ObjectEntries>(entries: E) =>
  v.pipe(
    v.custom<Record<string, unknown>>((input) => typeof input === "object" && input !== null && !Array.isArray(input)),
    v.object(entries),
  );

/**
 * The shape a PATCH may send: every field optional, types checked (a wrong type cannot be loaded at all).
 * `null` changes nothing, wherever it stands, as in PocketBase: Go's JSON decoder leaves a field alone for it.
 */
export const BackupsPatchSchema = plainObject({
  cron: v.nullish(v.string()),
  cronMaxKeep: v.nullish(v.pipe(v.number(), v.integer())),
  // Beyond PocketBase: tiered retention of scheduled backups (`retention-policy.ts`); 0 turns a tier off.
  keepLast: v.nullish(v.pipe(v.number(), v.integer())),
  keepDaily: v.nullish(v.pipe(v.number(), v.integer())),
  keepWeekly: v.nullish(v.pipe(v.number(), v.integer())),
  keepMonthly: v.nullish(v.pipe(v.number(), v.integer())),
  encryptionKey: v.nullish(v.string()),
  s3: v.nullish(
    plainObject({
      enabled: v.nullish(v.boolean()),
      bucket: v.nullish(v.string()),
      region: v.nullish(v.string()),
      endpoint: v.nullish(v.string()),
      accessKey: v.nullish(v.string()),
      secret: v.nullish(v.string()),
      forcePathStyle: v.nullish(v.boolean()),
    }),
  ),
});
export type BackupsPatch = v.InferOutput<typeof BackupsPatchSchema>;

const PARAMS_ID = "settings";

/**
 * The settings, kept as JSON in the `settings` row of `_params` in data.db (so a restore brings back the
 * backup's settings, as PocketBase). Other sections found there are kept as they are. Listeners hear about
 * every saved change and every reload (after a restore); the scheduler and the store selector listen.
 */
export class SettingsStore implements ScheduleSettings {
  #listeners = new Set<(settings: BackupsSettings) => void>();

  constructor(private readonly db: DatabaseHandle) {}

  async backups(): Promise<BackupsSettings> {
    return storedBackups(await this.#readAll());
  }

  /** The settings as they would be after `patch`: fields left out keep their value (the secret too). */
  async preview(patch: BackupsPatch): Promise<BackupsSettings> {
    return mergeBackups(await this.backups(), patch);
  }

  /** Saves a validated change (see `preview`). */
  async update(patch: BackupsPatch): Promise<BackupsSettings> {
    const all = await this.#readAll();
    const next = mergeBackups(storedBackups(all), patch);
    await this.db.execute({
      sql: "INSERT INTO _params (id, value, updated) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET value = excluded.value, updated = excluded.updated",
      args: [PARAMS_ID, JSON.stringify({ ...all, backups: next }), new Date().toISOString()],
    });
    this.#emit(next);
    return next;
  }

  /** Tells listeners to read again, after a restore replaced the database. */
  async reload(): Promise<void> {
    this.#emit(await this.backups());
  }

  /** Subscribes to every saved change. */
  onSettingsChange(listener: (settings: BackupsSettings) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ScheduleSettings, for the scheduler
  async get(): Promise<BackupSchedule> {
    return scheduleOf(await this.backups());
  }

  onChange(listener: (schedule: BackupSchedule) => void): () => void {
    return this.onSettingsChange((settings) => listener(scheduleOf(settings)));
  }

  #emit(settings: BackupsSettings) {
    for (const listener of this.#listeners) listener(settings);
  }

  async #readAll(): Promise<Record<string, unknown>> {
    return readParams(this.db);
  }
}

/**
 * The backups settings saved in the database file at `path`, read on a connection of its own that changes
 * nothing (no schema, no journal mode): the CLI's view, which may run beside a server. Defaults when the file
 * or its `_params` table does not exist yet.
 */
export async function readSavedBackupsSettings(path: string): Promise<BackupsSettings> {
  if (!existsSync(path)) return DEFAULT_BACKUPS_SETTINGS;
  const client = createClient({ url: `file:${path}`, timeout: BUSY_TIMEOUT_MS });
  try {
    return storedBackups(await readParams(client));
  } catch (error) {
    if (/no such table/i.test((error as Error).message)) return DEFAULT_BACKUPS_SETTINGS;
    throw error;
  } finally {
    client.close();
  }
}

/** The `settings` row of `_params` as an object: empty when there is none or it is not a JSON object. */
async function readParams(client: Pick<Client, "execute">): Promise<Record<string, unknown>> {
  const result = await client.execute({ sql: "SELECT value FROM _params WHERE id = ?", args: [PARAMS_ID] });
  const value = result.rows[0]?.[0];
  if (typeof value !== "string") return {};
  try {
    const parsed = JSON.parse(value) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function storedBackups(all: Record<string, unknown>): BackupsSettings {
  return mergeBackups(DEFAULT_BACKUPS_SETTINGS, (all.backups ?? {}) as BackupsPatch);
}

/** `base` with the fields `patch` sets; values of the wrong type in stored JSON are ignored. */
export function mergeBackups(base: BackupsSettings, patch: BackupsPatch): BackupsSettings {
  const parsed = v.safeParse(BackupsPatchSchema, patch);
  const p = parsed.success ? parsed.output : {};
  const s3 = Object.fromEntries(Object.entries(p.s3 ?? {}).filter(([, value]) => value != null));
  return {
    cron: p.cron ?? base.cron,
    cronMaxKeep: p.cronMaxKeep ?? base.cronMaxKeep,
    ...withKey(p.encryptionKey ?? base.encryptionKey),
    ...setTiers({ ...tiersOf(base), ...tiersOf(p as RetentionTiers) }),
    s3: { ...base.s3, ...s3 },
  };
}

const withKey = (key: string | undefined): { encryptionKey?: string } => (key ? { encryptionKey: key } : {});

const TIERS = ["keepLast", "keepDaily", "keepWeekly", "keepMonthly"] as const;

/** The tiers an object sets (null and absent left out). */
function tiersOf(source: Partial<Record<(typeof TIERS)[number], number | null>>): RetentionTiers {
  return Object.fromEntries(TIERS.filter((tier) => source[tier] != null).map((tier) => [tier, source[tier]])) as RetentionTiers;
}

/** The tiers that are on: 0 turns one off, and an off tier is not stored nor shown (PocketBase's shape stays). */
function setTiers(tiers: RetentionTiers): RetentionTiers {
  return Object.fromEntries(Object.entries(tiers).filter(([, n]) => n !== 0)) as RetentionTiers;
}

function scheduleOf(settings: BackupsSettings): BackupSchedule {
  return { cron: settings.cron, cronMaxKeep: settings.cronMaxKeep, ...tiersOf(settings) };
}

/** What clients see: the settings without the write-only secret. */
export function publicBackupsSettings(settings: BackupsSettings) {
  const { secret: _secret, ...s3 } = settings.s3;
  return { cron: settings.cron, cronMaxKeep: settings.cronMaxKeep, ...tiersOf(settings), s3 };
}
