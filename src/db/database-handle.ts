import { closeSync, openSync } from "node:fs";
import { createClient, type Client, type InStatement, type ResultSet } from "@libsql/client";

/** How long a statement waits for another connection's lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

/** Opens a libSQL file database the way every connection of ours does: WAL and a busy timeout. */
export async function openDatabase(path: string): Promise<Client> {
  // The client keeps a pool of connections (a second one opens while a transaction holds the first), so the
  // busy timeout goes in its options, which every connection gets: a PRAGMA would reach only one of them, and
  // a connection without it fails at once with SQLITE_BUSY when the app or a CLI holds a lock for a moment.
  const client = createClient({ url: `file:${path}`, timeout: BUSY_TIMEOUT_MS });
  // WAL lets the backup's read transaction run beside writers instead of blocking them (a property of the file).
  await client.execute("PRAGMA journal_mode=WAL");
  return client;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS _superusers (
     id TEXT PRIMARY KEY NOT NULL,
     email TEXT NOT NULL UNIQUE COLLATE NOCASE,
     password TEXT NOT NULL,
     tokenKey TEXT NOT NULL,
     created TEXT NOT NULL,
     updated TEXT NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS _params (
     id TEXT PRIMARY KEY NOT NULL,
     value TEXT NOT NULL,
     updated TEXT NOT NULL
   )`,
];

/**
 * The server's connection to `data.db`. A restore swaps the file underneath, so the connection can be
 * closed and opened again in-process; everything that queries goes through `execute`.
 */
export class DatabaseHandle {
  #client: Client | undefined;
  #pagesFd: number | undefined;
  /** How many `withPagesFd` calls are using each descriptor, and which of them the handle is done with. */
  readonly #pagesFdUsers = new Map<number, number>();
  readonly #pagesFdsToClose = new Set<number>();
  /** Settles when a swap in progress has reopened the database (or failed to). */
  #swapping: Promise<void> | undefined;

  constructor(readonly path: string) {}

  /** Opens the connection and creates the tables the server needs (a restored PocketBase database may lack them). */
  async open(): Promise<void> {
    if (this.#client) return;
    const client = await openDatabase(this.path);
    for (const statement of SCHEMA) await client.execute(statement);
    this.#client = client;
    this.#pagesFd = openSync(this.path, "r");
  }

  /**
   * Runs `use` with a read-only descriptor of the database file (undefined while closed), for a backup to read
   * pages through (`snapshot-database.ts`). It stays open until `use` settles, also when the handle closes
   * meanwhile (a server stopping during a backup): a closed descriptor's number can be given to the next file
   * opened, and a read through it would take that file's bytes for the database's.
   * Why the handle keeps one open beside its connection: closing any descriptor of a file drops every POSIX lock
   * the process holds on it, SQLite's included, and a backup that opened and closed its own let another process
   * think it was the last connection and delete the WAL under this one ("database disk image is malformed").
   * So it is closed only after the connection is.
   */
  async withPagesFd<T>(use: (fd: number | undefined) => Promise<T>): Promise<T> {
    const fd = this.#pagesFd;
    if (fd === undefined) return use(undefined);
    this.#pagesFdUsers.set(fd, (this.#pagesFdUsers.get(fd) ?? 0) + 1);
    try {
      return await use(fd);
    } finally {
      const users = this.#pagesFdUsers.get(fd)! - 1;
      if (users > 0) this.#pagesFdUsers.set(fd, users);
      else {
        this.#pagesFdUsers.delete(fd);
        if (this.#pagesFdsToClose.delete(fd)) closeSync(fd);
      }
    }
  }

  /**
   * Runs a statement on the open connection. While a restore swaps the file (`reopenAround`), it waits for the
   * new one: a request arriving in those milliseconds is answered from the restored data, not with a 500.
   */
  async execute(statement: InStatement): Promise<ResultSet> {
    while (!this.#client && this.#swapping) await this.#swapping;
    if (!this.#client) throw new Error("The database is closed.");
    return this.#client.execute(statement);
  }

  /**
   * Closes the connection, runs `replace` (which swaps the file), and opens it again, also when closing or
   * `replace` fails (the old file is then still in place). Queries asked for meanwhile wait and run on the
   * reopened one.
   */
  async reopenAround(replace: () => Promise<void>): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#swapping = promise;
    try {
      try {
        await this.close();
        await replace();
      } finally {
        await this.open();
      }
    } finally {
      this.#swapping = undefined;
      resolve();
    }
  }

  /** Closes the connection, checkpointing the WAL so that the file alone holds the data. */
  async close(): Promise<void> {
    const client = this.#client;
    const pagesFd = this.#pagesFd;
    this.#client = undefined;
    this.#pagesFd = undefined;
    if (!client) return;
    try {
      await client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      client.close();
      if (pagesFd !== undefined && this.#pagesFdUsers.has(pagesFd)) this.#pagesFdsToClose.add(pagesFd);
      else if (pagesFd !== undefined) closeSync(pagesFd);
    }
  }
}
