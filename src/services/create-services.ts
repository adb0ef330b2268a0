// One wiring of the backup services, for the server and the CLI alike: recovery of an interrupted restore, the
// database, the settings, the stores, the job lock and tracker, and the BackupService over them. What only the
// server has (HTTP, auth, the scheduler) stays in server.ts.
import { rotateServerSecret } from "../auth/server-secret.ts";
import { BackupService, type JobRunner } from "../backups/backup-service.ts";
import { JobLock } from "../backups/job-lock.ts";
import { recoverRestore, recoveryMessage } from "../backups/restore-swap.ts";
import type { Config } from "../config.ts";
import { DatabaseHandle } from "../db/database-handle.ts";
import { dataDirPaths } from "../fs/data-dir.ts";
import { JobTracker } from "../jobs/job-tracker.ts";
import { runJobInWorker } from "../jobs/run-job.ts";
import type { Logger } from "../logger.ts";
import { readSavedBackupsSettings, SettingsStore } from "../settings/settings-store.ts";
import type { StoreSelector } from "../store/store-selector.ts";
import { VERSION } from "../version.ts";
import { commandLineStores, serverStores } from "./configured-stores.ts";

export interface ServicesOptions {
  log: Logger;
  /**
   * Who runs the services. "server": opens data.db, saves `PB_BACKUPS_S3_*` into its settings and follows every
   * change of them, answers a restore before it starts (`restoreDelayMs`), honours `testPauseAt`, and reloads the
   * settings after a restore. "command-line": reads the saved settings and writes nothing (a cron job must not
   * rewrite the app's settings), and restores at once: the command waits for its own restore.
   */
  mode: "server" | "command-line";
  /** Runs a job; a worker thread by default. */
  runJob?: JobRunner;
  /** Hears the server secret a restore rotated (the server's token checks read it). */
  onSecretRotated?: (secret: string) => void;
}

/** The services over one data directory. */
export interface Services {
  paths: ReturnType<typeof dataDirPaths>;
  db: DatabaseHandle;
  settings: SettingsStore;
  stores: StoreSelector;
  jobs: JobTracker;
  backups: BackupService;
}

/**
 * Builds the services over `config.dir`. The caller holds the data directory's lock first
 * (`acquireDataDirLock`) and closes `db` when done. Recovery runs before anything opens the database.
 */
export async function createServices(config: Config, options: ServicesOptions): Promise<Services> {
  const { log } = options;
  const server = options.mode === "server";
  const paths = dataDirPaths(config.dir);
  const recovered = recoveryMessage(await recoverRestore(paths.dir));
  if (recovered) log.warn(recovered);
  const db = new DatabaseHandle(paths.database);
  if (server) await db.open();
  const settings = new SettingsStore(db);
  const stores = server ? await serverStores(paths.backups, config, settings) : await commandLineStores(paths.backups, paths.database, config);
  if (server) settings.onSettingsChange((next) => stores.use(next));
  await stores.cleanup((error) => log.warn("could not clean up the backup store", { cause: error.message }));

  const jobs = new JobTracker();
  const backups = new BackupService({
    dataDir: paths.dir,
    appName: config.appName,
    producer: `backstream/${VERSION}`,
    db,
    lock: new JobLock(),
    jobs,
    log,
    store: () => stores.current(),
    runJob: options.runJob ?? runJobInWorker,
    restoreDelayMs: server ? config.restoreDelayMs : 0,
    restoreReserveBytes: config.restoreReserveMb * 1024 * 1024,
    deflater: config.deflater,
    afterRestore: async () => {
      // New secret: every token issued before the restore stops working, as the superusers changed.
      const secret = await rotateServerSecret(paths.dir);
      options.onSecretRotated?.(secret);
      if (server) await settings.reload(); // the restored database may hold other settings (schedule, S3)
    },
    ...(server && config.testPauseAt ? { pauseAt: config.testPauseAt } : {}),
    // The environment's (or the command line's) key wins over the saved one, as S3's variables do.
    keys: async () => {
      const saved = server ? await settings.backups() : await readSavedBackupsSettings(paths.database);
      const current = config.backupPassword ?? (saved.encryptionKey || undefined);
      return { ...(current ? { current } : {}), older: config.oldBackupPasswords };
    },
  });
  return { paths, db, settings, stores, jobs, backups };
}
