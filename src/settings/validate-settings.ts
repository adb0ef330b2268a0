import { cronProblem } from "./cron.ts";
import type { FieldError } from "../errors.ts";
import type { BackupsSettings } from "./settings-store.ts";

/** A tier above this keeps more than ten years of daily backups: a typo, not a policy. */
const MAX_TIER = 10_000;

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
