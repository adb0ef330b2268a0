import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

/** The lock file at the data directory root (listed in INTERNAL_ROOT_ENTRIES, so never backed up nor restored). */
export const LOCK_FILE = ".backstream.lock";

/** Who holds the data directory: a server for its lifetime, or one CLI command. */
export interface DataDirLockOwner {
  pid: number;
  /** `server` or the CLI command, e.g. `backup restore`. */
  holder: string;
  startedAt: string;
  token: string;
}

/** The data directory is held by another live process (or by a server in this one). */
export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  constructor(readonly owner: DataDirLockOwner) {
    super(
      owner.holder === "server"
        ? `A backstream server (pid ${owner.pid}) is running on this data directory; stop it or use its API instead.`
        : `Another backstream command (${owner.holder}, pid ${owner.pid}) is working on this data directory; try again later.`,
    );
  }
}

// Tokens of locks this process holds now: a file naming our own pid but none of these was left by an
// instance of ours that never released it (an in-process server that was not stopped), so it is stale.
const heldHere = new Set<string>();

/**
 * Takes the cross-process lock of a data directory: a file created with O_EXCL holding pid, holder and start
 * time. A lock whose process is gone (a crash, SIGKILL) is recovered: removed and taken again. Throws
 * `DataDirLockedError` when a live process holds it. The returned function releases it (once).
 */
export async function acquireDataDirLock(dir: string, holder: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const owner: DataDirLockOwner = { pid: process.pid, holder, startedAt: new Date().toISOString(), token: randomUUID() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, "wx", 0o644);
      try {
        await handle.writeFile(JSON.stringify(owner));
        await handle.sync();
      } finally {
        await handle.close();
      }
      heldHere.add(owner.token);
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        heldHere.delete(owner.token);
        // Only remove the file if it is still ours.
        const current = await readOwner(path);
        if (current?.token === owner.token) await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const current = await readOwner(path);
    if (current && isLive(current)) throw new DataDirLockedError(current);
    // Stale (or unreadable, e.g. torn by a crash mid-write): recover it and try again.
    await rm(path, { force: true });
  }
  const current = await readOwner(path);
  throw new DataDirLockedError(current ?? { pid: 0, holder: "unknown", startedAt: "", token: "" });
}

/** Who holds the lock now, if a live process does. */
export async function dataDirLockOwner(dir: string): Promise<DataDirLockOwner | undefined> {
  const owner = await readOwner(join(dir, LOCK_FILE));
  return owner && isLive(owner) ? owner : undefined;
}

async function readOwner(path: string): Promise<DataDirLockOwner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as DataDirLockOwner;
    return typeof parsed.pid === "number" && typeof parsed.token === "string" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function isLive(owner: DataDirLockOwner): boolean {
  if (owner.pid === process.pid) return heldHere.has(owner.token);
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return !isZombie(owner.pid);
}

/** A killed process its parent has not reaped yet still answers `kill(pid, 0)`; on Linux, /proc tells. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state === "Z" || state === "X";
  } catch {
    return false;
  }
}
