import { stat } from "node:fs/promises";
import { acquireDataDirLock, DataDirLockedError } from "../backups/data-dir-lock.ts";
import type { Config } from "../config.ts";
import { ApiError, NotFoundError } from "../errors.ts";
import { dataDirPaths } from "../fs/data-dir.ts";
import type { JobRecord } from "../jobs/job-tracker.ts";
import { createLogger } from "../logger.ts";
import { commandLineStores } from "../services/configured-stores.ts";
import { createServices, type Services } from "../services/create-services.ts";
import { createProgressDisplay, formatBytes, type ProgressOutput } from "./progress-display.ts";

/** The CLI's exit codes: scripts and cron jobs tell these apart. */
export const EXIT = { ok: 0, failed: 1, usage: 2, busy: 3 } as const;

export const BACKUP_USAGE = `  bun src/cli.ts backup create [NAME] [--dir=./pb_data]
  bun src/cli.ts backup list [--dir=./pb_data]
  bun src/cli.ts backup verify KEY [--json] [--dir=./pb_data]
  bun src/cli.ts backup restore KEY [--dir=./pb_data]`;

export interface CliIO {
  stdout: (text: string) => void;
  stderr: ProgressOutput;
}

const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: { isTTY: Boolean(process.stderr.isTTY), write: (text) => void process.stderr.write(text) },
};

/**
 * `backup create|list|verify|restore` on a data directory without the HTTP server, through the same service,
 * worker jobs and store as the API. Commands that archive or replace data take the data directory's lock
 * file, which a running server holds for its lifetime: the two never work on one directory at once.
 */
export async function runBackupCommand(args: string[], flags: Record<string, string>, config: Config, io: CliIO = processIO): Promise<number> {
  const [sub, ...rest] = args;
  const err = (text: string) => io.stderr.write(`${text}\n`);
  const usage = () => {
    err(`Usage:\n${BACKUP_USAGE}`);
    return EXIT.usage;
  };
  if (!sub || !["create", "list", "verify", "restore"].includes(sub)) return usage();
  if ((sub === "create" && rest.length > 1) || (sub === "list" && rest.length > 0) || ((sub === "verify" || sub === "restore") && rest.length !== 1)) {
    return usage();
  }
  const paths = dataDirPaths(config.dir);
  if (!(await stat(paths.dir).then((s) => s.isDirectory(), () => false))) {
    err(`There is no data directory at ${config.dir}.`);
    return EXIT.failed;
  }
  if (sub === "list") {
    const { store } = (await commandLineStores(paths.backups, paths.database, config)).current();
    const items = (await store.list()).sort((a, b) => b.modified.getTime() - a.modified.getTime());
    for (const item of items) io.stdout(`${item.key}\t${item.size}\t${item.modified.toISOString()}\n`);
    return EXIT.ok;
  }

  let release: () => Promise<void>;
  try {
    release = await acquireDataDirLock(paths.dir, `backup ${sub}`);
  } catch (error) {
    if (!(error instanceof DataDirLockedError)) throw error;
    err(error.message);
    if (error.owner.holder === "server") {
      const hint = { create: "POST /api/backups", verify: "POST /api/backups/{key}/verify", restore: "POST /api/backups/{key}/restore" }[sub];
      err(`With the server running, use its API (${hint}).`);
    }
    return EXIT.busy;
  }
  const display = createProgressDisplay(io.stderr);
  // a log line ends the bar's line first, so the two never share one
  const log = createLogger((line) => {
    display.end();
    err(line);
  });
  let services: Services | undefined;
  try {
    services = await createServices(config, { log, mode: "command-line" });
    const { jobs, backups: service } = services;
    jobs.subscribe((job) => display.update(job));
    try {
      if (sub === "create") {
        const key = await service.create(rest[0] || undefined);
        display.end();
        io.stdout(`${key}\n`);
        return EXIT.ok;
      }
      if (sub === "verify") {
        const report = await service.verify(rest[0]!);
        display.end();
        if (flags.json === "true") io.stdout(`${JSON.stringify(report)}\n`);
        else {
          io.stdout(`${report.ok ? "ok" : "FAILED"}: ${report.entries} entries, ${formatBytes(report.bytes)}, sha256 ${report.sha256}\n`);
          for (const problem of report.problems) io.stdout(`  - ${problem}\n`);
        }
        return report.ok ? EXIT.ok : EXIT.failed;
      }
      const finished = new Promise<JobRecord>((resolve) => jobs.subscribe((job) => job.kind === "restore" && job.finishedAt && resolve(job)));
      await service.restore(rest[0]!);
      const job = await finished;
      display.end();
      if (job.error) {
        err(`Restore failed; the current data is unchanged: ${job.error}`);
        return EXIT.failed;
      }
      io.stdout(`restored ${job.key}\n`);
      return EXIT.ok;
    } catch (error) {
      display.end();
      return reportError(error, err);
    }
  } finally {
    await services?.db.close().catch(() => {});
    await release();
  }
}

function reportError(error: unknown, err: (text: string) => void): number {
  if (error instanceof NotFoundError) {
    err("No backup with that key.");
    return EXIT.failed;
  }
  if (error instanceof ApiError) {
    const fields = Object.entries(error.data).map(([field, e]) => `${field}: ${(e as { message?: string }).message}`);
    err([error.message, ...fields].join("\n  "));
    if (error.message === "Missing or invalid backup file.") return EXIT.failed;
    return Object.keys(error.data).length ? EXIT.usage : EXIT.failed;
  }
  if ((error as Error)?.name === "BackupBusyError") {
    err((error as Error).message);
    return EXIT.busy;
  }
  err(error instanceof Error ? error.message : String(error));
  return EXIT.failed;
}
