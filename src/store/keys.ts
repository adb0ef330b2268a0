import { NotFoundError } from "../errors.ts";

/** Most file systems (ext4, xfs, btrfs, tmpfs, APFS) refuse a file name over 255 bytes (`NAME_MAX`). */
const NAME_MAX_BYTES = 255;

/**
 * The longest key a new backup (an upload) may have, in bytes of UTF-8. The local store names files after the
 * key: `.meta/<key>.sha256` and, while that sidecar is written, `<key>.sha256.<8 hex>.tmp` (key + 20 bytes, the
 * longest), `.blocks/<key>.json` and its `<key>.json.<8 hex>.tmp` (key + 18). 255 - 20 = 235 would just fit;
 * 200 keeps 35 bytes to spare for a longer suffix later. Created names are at most 150 ASCII characters anyway.
 */
export const MAX_NEW_KEY_BYTES = 200;

/**
 * Backup keys are not only `^[a-z0-9_-]+\.zip$`: scheduled backups start with `@` and uploads keep the
 * client's basename. So keys are checked for safety, not for a pattern: one path segment of at most 255 bytes,
 * no separators, no control characters, not hidden (hidden names are the stores' own temp and metadata folders).
 * A key placed in the backups folder by hand may use all 255 bytes; new keys must fit `fitsNewKey` as well.
 */
export function isSafeKey(key: string): boolean {
  return key.length > 0 && keyBytes(key) <= NAME_MAX_BYTES && !key.startsWith(".") && !/[\/\\\x00-\x1f\x7f]/.test(key);
}

/** Whether a key is short enough for a new backup: every file the local store derives from it fits 255 bytes. */
export function fitsNewKey(key: string): boolean {
  return keyBytes(key) <= MAX_NEW_KEY_BYTES;
}

/** An unsafe key can never name a stored backup, so it is simply not found. */
export function assertSafeKey(key: string): void {
  if (!isSafeKey(key)) throw new NotFoundError("Invalid backup key.");
}

function keyBytes(key: string): number {
  return Buffer.byteLength(key, "utf8");
}
