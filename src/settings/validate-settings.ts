import { cronProblem } from "./cron.ts";
import type { FieldError } from "../errors.ts";
import type { BackupsSettings } from "./settings-store.ts";

/** A tier above this keeps more than ten years of daily backups: a typo, not a policy. */
const MAX_TIER = 10_000;

/**
 * The shortest backup encryption key taken. WinZip AES derives its key with PBKDF2-HMAC-SHA1 at 1000 rounds, which
 * slows a guesser little (a GPU tries millions a second), so the key itself must carry the strength: 16 random
 * characters or a passphrase of five or six words are out of reach; an 8-character password is not.
 */
export const MIN_KEY_LENGTH = 16;
const MAX_KEY_LENGTH = 1024;

const REQUIRED: FieldError = { code: "validation_required", message: "Cannot be blank." };

/** Nested field errors, as PocketBase answers them: `{"backups": {"s3": {"bucket": {code, message}}}}`. */
export type SettingsErrors = Record<string, unknown>;

/**
 * The rules PocketBase applies to the backups section, on the settings as they would be after the change:
 * a valid cron, `cronMaxKeep` ≥ 1 when a cron is set, and every S3 field when S3 is enabled.
 */
export function backupsSettingsProblems(settings: BackupsSettings): SettingsErrors | undefined {
  const backups: Record<string, unknown> = {};
  const cron = cronProblem(settings.cron);
  if (cron) backups.cron = { code: "validation_invalid_cron", message: sentence(cron) };
  if (settings.cron && settings.cronMaxKeep < 1) {
    backups.cronMaxKeep = { code: "validation_min_greater_equal_than_required", message: "Must be no less than 1.", params: { threshold: 1 } };
  }
  for (const tier of ["keepLast", "keepDaily", "keepWeekly", "keepMonthly"] as const) {
    const n = settings[tier];
    if (n === undefined) continue;
    if (n < 0) backups[tier] = { code: "validation_min_greater_equal_than_required", message: "Must be no less than 0.", params: { threshold: 0 } };
    else if (n > MAX_TIER) backups[tier] = { code: "validation_max_less_equal_than_required", message: `Must be no greater than ${MAX_TIER}.`, params: { threshold: MAX_TIER } };
  }
  const key = [...(settings.encryptionKey ?? "")].length;
  if (key > 0 && (key < MIN_KEY_LENGTH || key > MAX_KEY_LENGTH)) {
    backups.encryptionKey = { code: "validation_length_out_of_range", message: `The length must be between ${MIN_KEY_LENGTH} and ${MAX_KEY_LENGTH}.`, params: { max: MAX_KEY_LENGTH, min: MIN_KEY_LENGTH } };
  }
  const s3: Record<string, FieldError> = {};
  if (settings.s3.enabled) {
    for (const field of ["endpoint", "bucket", "region", "accessKey", "secret"] as const) {
      if (!settings.s3[field].trim()) s3[field] = REQUIRED;
    }
  }
  if (settings.s3.endpoint && !isUrl(settings.s3.endpoint)) s3.endpoint = { code: "validation_is_url", message: "Must be a valid URL." };
  if (Object.keys(s3).length) backups.s3 = s3;
  return Object.keys(backups).length ? { backups } : undefined;
}

function isUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** PocketBase's messages start upper-case and end with a period. */
function sentence(text: string): string {
  const trimmed = text.trim().replace(/[.!?]*$/, "");
  return `${trimmed.charAt(0).toUpperCase()}${trimmed.slice(1)}.`;
}
