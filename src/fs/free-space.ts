import { statfs } from "node:fs/promises";

/** Free disk space a restore leaves to the app by default, beside what the restored data needs. */
export const DEFAULT_RESTORE_RESERVE_BYTES = 256 * 1024 * 1024;

const MB = 1024 * 1024;

/**
 * Why restoring `neededBytes` into `dir` must not start, if it must not: the disk holding `dir` lacks room for
 * them plus `reserveBytes` left free.
 *
 * Why: the old data stays until the swap, so a restore needs the new data's full size on top of it. Finding out
 * by running out of space would fill the disk first, and the app's own writes would fail until the staging
 * folder is removed. Checked from the archive's central directory, before the first byte is extracted.
 */
export async function freeSpaceProblem(dir: string, neededBytes: number, reserveBytes: number): Promise<string | undefined> {
  const { bavail, bsize } = await statfs(dir);
  const free = Number(bavail) * Number(bsize);
  if (neededBytes + reserveBytes <= free) return undefined;
  return (
    `Not enough free disk space to restore this backup: it needs ${Math.ceil(neededBytes / MB)} MB, ` +
    `and ${Math.ceil(reserveBytes / MB)} MB are kept free for the app, but the disk has ${Math.floor(free / MB)} MB free.`
  );
}
