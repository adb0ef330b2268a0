import { join } from "node:path";

/** Root entries of the data directory that are never backed up nor replaced by a restore (SPEC.md §3). */
export const EXCLUDED_ROOT_ENTRIES = new Set(["backups", ".pb_temp_to_delete", ".notify", ".autocert_cache", "lost+found"]);

/** The server's own bookkeeping at the data directory root, kept out of backups and restores as well. */
export const INTERNAL_ROOT_ENTRIES = new Set([
  ".pb_secret",
  ".pb_secret.tmp",
  ".pb_restore_staging",
  ".pb_restore_journal.json",
  ".pb_restore_journal.json.tmp",
  ".backstream.lock",
]);

/** Whether a root entry belongs to the data a backup carries and a restore replaces. */
export function isDataRootEntry(name: string): boolean {
  return !EXCLUDED_ROOT_ENTRIES.has(name) && !INTERNAL_ROOT_ENTRIES.has(name);
}

/** SQLite's own files beside a database: its WAL, its shared-memory index, its rollback journal. */
export const SQLITE_COMPANION_SUFFIXES = ["-wal", "-shm", "-journal"] as const;

/** The `*.db` file a SQLite companion file belongs to (`data.db` for `data.db-wal`); undefined for any other. */
export function companionDatabaseOf(name: string): string | undefined {
  const suffix = SQLITE_COMPANION_SUFFIXES.find((s) => name.endsWith(s));
  const database = suffix && name.slice(0, -suffix.length);
  return database && database.endsWith(".db") ? database : undefined;
}

/** Paths inside one data directory. */
export function dataDirPaths(dir: string) {
  return {
    dir,
    database: join(dir, "data.db"),
    backups: join(dir, "backups"),
    trash: join(dir, ".pb_temp_to_delete"),
    staging: join(dir, ".pb_restore_staging"),
    journal: join(dir, ".pb_restore_journal.json"),
  };
}
