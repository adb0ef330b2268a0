import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { isDataRootEntry } from "../fs/data-dir.ts";

/** SQLite's own files beside a database: a restore replaces them with the database, so they are not counted. */
const isSqliteCompanion = (name: string) => /\.db-(wal|shm|journal)$/.test(name);

/**
 * The number of files a restore replaces: every file under the data directory's data root entries, SQLite's
 * companion files left out. A restore that brings fewer is worth naming in the log (`BackupService`), because a
 * PocketBase zip is restored as PocketBase would, replacing everything, even when it holds less than the live data.
 */
export async function countLiveFiles(dir: string): Promise<number> {
  let count = 0;
  const walk = async (folder: string, atRoot: boolean) => {
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (atRoot && !isDataRootEntry(entry.name)) continue;
      if (entry.isDirectory()) await walk(join(folder, entry.name), false);
      else if (!isSqliteCompanion(entry.name)) count++;
    }
  };
  await walk(dir, true);
  return count;
}
