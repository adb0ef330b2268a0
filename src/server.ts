import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { AppContext } from "./app-context.ts";
import { createApp } from "./app.ts";
import { AuthService } from "./auth/auth-service.ts";
import { loadServerSecret, rotateServerSecret } from "./auth/server-secret.ts";
import { SuperuserRepository } from "./auth/superusers.ts";
import { BackupService, type JobRunner } from "./backups/backup-service.ts";
import { dataDirPaths } from "./backups/data-dir.ts";
import { acquireDataDirLock } from "./backups/data-dir-lock.ts";
import { BackupScheduler, type SchedulerClock } from "./backups/scheduler.ts";
import { JobLock } from "./backups/job-lock.ts";
import { recoverRestore, recoveryMessage } from "./backups/restore-swap.ts";
import { parseHostPort, type Config } from "./config.ts";
import { DatabaseHandle } from "./db/database-handle.ts";
import { JobTracker } from "./jobs/job-tracker.ts";
import { runJobInWorker } from "./jobs/run-job.ts";
import { createLogger, type Logger } from "./logger.ts";
import { SettingsStore } from "./settings/settings-store.ts";
import { serverStores } from "./store/configured-stores.ts";
import { VERSION } from "./version.ts";

export interface RunningServer {
  url: string;
  ctx: AppContext;
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  runJob?: JobRunner;
  /** The scheduler's clock (tests use a fake one). */
  clock?: SchedulerClock;
}

/**
 * Opens the data directory (finishing or discarding an interrupted restore first), makes sure a superuser
 * exists, and serves the API. The order matters: recovery runs before anything opens the database.
 */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger();
  const paths = dataDirPaths(config.dir);
  await mkdir(paths.dir, { recursive: true });
  // Held for the server's lifetime: the CLI refuses to work on a data directory a server has open.
  const releaseDirLock = await acquireDataDirLock(paths.dir, "server");
  try {
    return await startLocked(config, options, log, paths, releaseDirLock);
  } catch (error) {
    await releaseDirLock();
    throw error;
  }
}

async function startLocked(
  config: Config,
  options: StartOptions,
  log: Logger,
  paths: ReturnType<typeof dataDirPaths>,
  releaseDirLock: () => Promise<void>,
): Promise<RunningServer> {
  const recovered = recoveryMessage(await recoverRestore(paths.dir));
  if (recovered) log.warn(recovered);
  const db = new DatabaseHandle(paths.database);
  await db.open();
  const settings = new SettingsStore(db);
  const stores = await serverStores(paths.backups, config, settings);
  settings.onSettingsChange((next) => stores.use(next));
  await stores.cleanup((error) => log.warn("could not clean up the backup store", { cause: error.message }));
  let secret = await loadServerSecret(paths.dir);
  const superusers = new SuperuserRepository(db);
  const auth = new AuthService(superusers, () => secret);
  await ensureSuperuser(superusers, config, log);

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
    restoreDelayMs: config.restoreDelayMs,
    restoreReserveBytes: config.restoreReserveMb * 1024 * 1024,
    deflater: config.deflater,
    afterRestore: async () => {
      // New secret: every token issued before the restore stops working, as the superusers changed.
      secret = await rotateServerSecret(paths.dir);
      await settings.reload(); // the restored database may hold other settings (schedule, S3)
    },
    ...(config.testPauseAt ? { pauseAt: config.testPauseAt } : {}),
  });
  const scheduler = new BackupScheduler({
    settings,
    backups,
    appName: config.appName,
    log,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(config.alertWebhook ? { alertWebhook: config.alertWebhook } : {}),
  });
  await scheduler.start();
  const ctx: AppContext = { dataDir: paths.dir, appName: config.appName, db, settings, stores, auth, backups, jobs, log };
  const { hostname, port } = parseHostPort(config.http);
  const app = createApp(ctx).listen({ hostname, port, maxRequestBodySize: Number.MAX_SAFE_INTEGER, idleTimeout: 0 });
  const server = app.server!;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`;
  log.info(`serving on ${url}`);
  return {
    url,
    ctx,
    async stop() {
      scheduler.stop();
      await app.stop(true);
      await scheduler.idle();
      await db.close();
      await releaseDirLock();
    },
  };
}

async function ensureSuperuser(superusers: SuperuserRepository, config: Config, log: Logger): Promise<void> {
  if (config.superuserEmail && config.superuserPassword) {
    await superusers.upsert(config.superuserEmail, config.superuserPassword);
    log.info("superuser from the environment upserted", { email: config.superuserEmail });
    return;
  }
  if ((await superusers.count()) > 0) return;
  const email = "admin@example.com";
  const password = randomBytes(12).toString("base64url");
  await superusers.upsert(email, password);
  // Printed once, straight to the terminal (not through the logger), so that log files do not keep it.
  console.log(
    [
      "",
      "A first superuser was created:",
      `  email:    ${email}`,
      `  password: ${password}`,
      "Change it with: npm exec -- bun src/cli.ts superuser upsert EMAIL PASSWORD",
      "",
    ].join("\n"),
  );
}
