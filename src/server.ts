import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { AppContext } from "./app-context.ts";
import { createApp } from "./app.ts";
import { AuthService } from "./auth/auth-service.ts";
import { loadServerSecret } from "./auth/server-secret.ts";
import { SuperuserRepository } from "./auth/superusers.ts";
import type { JobRunner } from "./backups/backup-service.ts";
import { acquireDataDirLock } from "./backups/data-dir-lock.ts";
import { BackupScheduler, type SchedulerClock } from "./backups/scheduler.ts";
import { parseHostPort, type Config } from "./config.ts";
import { dataDirPaths } from "./fs/data-dir.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createServices } from "./services/create-services.ts";

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
    return await startLocked(config, options, log, releaseDirLock);
  } catch (error) {
    await releaseDirLock();
    throw error;
  }
}

async function startLocked(config: Config, options: StartOptions, log: Logger, releaseDirLock: () => Promise<void>): Promise<RunningServer> {
  let secret = "";
  const { paths, db, settings, stores, jobs, backups } = await createServices(config, {
    log,
    mode: "server",
    runJob: options.runJob,
    onSecretRotated: (next) => {
      secret = next;
    },
  });
  secret = await loadServerSecret(paths.dir);
  const superusers = new SuperuserRepository(db);
  const auth = new AuthService(superusers, () => secret);
  await ensureSuperuser(superusers, config, log);

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
