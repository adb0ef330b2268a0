import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { companionDatabaseOf, isDataRootEntry } from "../fs/data-dir.ts";

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
      // SQLite's own files beside a database go with it: a restore replaces them with the database.
      else if (!companionDatabaseOf(entry.name)) count++;
    }
  };
  await walk(dir, true);
  return count;
}
