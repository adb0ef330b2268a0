import type { FieldError } from "../errors.ts";
import { fitsNewKey, isSafeKey, MAX_NEW_KEY_BYTES } from "../store/keys.ts";

const NAME_PATTERN = /^[a-z0-9_-]+\.zip$/;

/** Create's answer for a name already stored (or being deleted right now). */
export const NAME_TAKEN: FieldError = { code: "validation_backup_name_exists", message: "The backup file name is invalid or already exists." };

/** Upload's answer for a key already stored (or being deleted right now), on `data.file`. */
export const UPLOAD_NAME_TAKEN: FieldError = { code: "validation_backup_name_exists", message: "Backup file with the specified name already exists." };

/** PocketBase's rules for a backup name given to create, first failure wins (SPEC.md §3, Create). */
export function backupNameProblem(name: string, exists: boolean): FieldError | undefined {
  if (name.length < 1 || name.length > 150) {
    return { code: "validation_length_out_of_range", message: "The length must be between 1 and 150.", params: { max: 150, min: 1 } };
  }
  if (!NAME_PATTERN.test(name)) return { code: "validation_match_invalid", message: "Must be in a valid format." };
  if (exists) return NAME_TAKEN;
  return undefined;
}

/** `Acme Corp` → `acme_corp`, as PocketBase snake-cases the app name in generated backup names. */
export function snakeCase(text: string): string {
  return text
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toLowerCase();
}

/** `YYYYMMDDhhmmss` in UTC. */
export function compactUtc(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/** `pb_backup_<app>_<UTC YYYYMMDDhhmmss>.zip`, or with the `@auto_` prefix for scheduled backups. */
export function generateBackupName(appName: string, date: Date, scheduled = false): string {
  return `${scheduled ? "@auto_" : ""}pb_backup_${snakeCase(appName) || "app"}_${compactUtc(date)}.zip`;
}

/** The key an upload is stored under: the basename of the client's file name (`../../evil.zip` → `evil.zip`). */
export function uploadKey(filename: string): string {
  return filename.split(/[\/\\]/).pop()!.trim();
}

/** What is wrong with an upload's key (`uploadKey`) before anything is looked up: too long for the store, or unsafe. */
export function uploadKeyProblem(key: string): FieldError | undefined {
  if (!fitsNewKey(key)) {
    return { code: "validation_length_out_of_range", message: `The file name must be at most ${MAX_NEW_KEY_BYTES} bytes long.`, params: { max: MAX_NEW_KEY_BYTES } };
  }
  if (!isSafeKey(key)) return { code: "validation_invalid_backup", message: "The file name cannot be used as a backup name." };
  return undefined;
}
