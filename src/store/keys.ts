import { NotFoundError } from "../errors.ts";

/**
 * Backup keys are not only `^[a-z0-9_-]+\.zip$`: scheduled backups start with `@` and uploads keep the
 * client's basename. So keys are checked for safety, not for a pattern: one path segment, no separators,
 * no control characters, not hidden (hidden names are the stores' own temp and metadata folders).
 */
export function isSafeKey(key: string): boolean {
  return key.length > 0 && key.length <= 255 && !key.startsWith(".") && !/[\/\\\x00-\x1f\x7f]/.test(key);
}

/** An unsafe key can never name a stored backup, so it is simply not found. */
export function assertSafeKey(key: string): void {
  if (!isSafeKey(key)) throw new NotFoundError("Invalid backup key.");
}
