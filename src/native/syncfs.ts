// syncfs(2) through bun:ffi: one call makes every written file of a file system durable, where a restore of many
// small files otherwise waits for one fsync per file (PostgreSQL's recovery_init_sync_method=syncfs, for the same
// reason). Linux only; elsewhere, or without bun:ffi, callers fsync file by file.
import { open } from "node:fs/promises";

type SyncFs = (fd: number) => number;

let loaded: SyncFs | null | undefined;

async function loadSyncFs(): Promise<SyncFs | null> {
  // BACKSTREAM_SYNCFS=off (config.ts) keeps the fsync per file: on a file system shared with much other dirty
  // data, one syncfs also waits for all of that.
  if (process.env.BACKSTREAM_SYNCFS === "off") return null;
  if (process.platform !== "linux" || typeof Bun === "undefined") return null;
  try {
    const { dlopen, FFIType } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", { syncfs: { args: [FFIType.i32], returns: FFIType.i32 } });
    return (fd) => libc.symbols.syncfs(fd);
  } catch {
    return null;
  }
}

/** Whether `syncFileSystem` can run here. */
export async function canSyncFileSystem(): Promise<boolean> {
  loaded ??= await loadSyncFs();
  return loaded !== null;
}

/**
 * Makes every file written so far on the file system holding `dir` durable (data and metadata, directories
 * included), or throws. Since Linux 5.8 syncfs reports write-back errors of that file system to its caller.
 */
export async function syncFileSystem(dir: string): Promise<void> {
  loaded ??= await loadSyncFs();
  if (!loaded) throw new Error("syncfs is not available here");
  const handle = await open(dir, "r");
  try {
    if (loaded(handle.fd) !== 0) throw Object.assign(new Error("syncfs failed: the restored files could not be flushed to disk"), { code: "EIO" });
  } finally {
    await handle.close();
  }
}
