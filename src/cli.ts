#!/usr/bin/env bun
import { join } from "node:path";
import { SuperuserRepository } from "./auth/superusers.ts";
import { BACKUP_USAGE, runBackupCommand } from "./cli/backup-commands.ts";
import { loadConfig, parseFlags } from "./config.ts";
import { DatabaseHandle } from "./db/database-handle.ts";
import { startServer } from "./server.ts";

const USAGE = `Usage:
  bun src/cli.ts serve [--http=127.0.0.1:8090] [--dir=./pb_data]
  bun src/cli.ts superuser upsert EMAIL PASSWORD [--dir=./pb_data]
${BACKUP_USAGE}

Exit codes: 0 success, 1 failure, 2 usage, 3 busy (a server or another command holds the data directory).`;

/** Parses the command line and calls the services; exit codes: 0 success, 1 failure, 2 usage, 3 busy. */
async function main(argv: string[]): Promise<number> {
  const { flags, positional } = parseFlags(argv);
  const config = loadConfig(flags, process.env);
  const [command, sub, ...rest] = positional;
  if (command === "serve") {
    const server = await startServer(config);
    const shutdown = async () => {
      await server.stop();
      process.exit(0);
    };
    process.once("SIGINT", shutdown);
    process.once("SIGTERM", shutdown);
    return -1; // keep running
  }
  if (command === "backup") return runBackupCommand(positional.slice(1), flags, config);
  if (command === "superuser" && sub === "upsert" && rest.length === 2) {
    const [email, password] = rest as [string, string];
    if (!/^[^\s@]+@[^\s@]+$/.test(email) || password.length < 8) {
      console.error("EMAIL must be an email address and PASSWORD at least 8 characters.");
      return 2;
    }
    const db = new DatabaseHandle(join(config.dir, "data.db"));
    await import("node:fs/promises").then((fs) => fs.mkdir(config.dir, { recursive: true }));
    await db.open();
    const outcome = await new SuperuserRepository(db).upsert(email, password);
    await db.close();
    console.log(`Superuser ${email} ${outcome}.`);
    return 0;
  }
  console.error(USAGE);
  return 2;
}

/**
 * Exits once stdout and stderr have taken everything written to them: in a pipe, an exit right after a write
 * could lose it (a failed command's only line, its message, went missing that way).
 */
function exitWhenWritten(code: number): void {
  let waiting = 2;
  const done = () => --waiting === 0 && process.exit(code);
  process.stdout.write("", done);
  process.stderr.write("", done);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) exitWhenWritten(code);
  },
  (error: Error) => {
    console.error(error.message);
    exitWhenWritten(1);
  },
);
