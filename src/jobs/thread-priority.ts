import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { promisify } from "node:util";
import { deflateRaw } from "node:zlib";

/** Nice value for the job's threads: below the HTTP thread, which stays at the process's own priority. */
const BACKGROUND_NICE = 10;

/**
 * Lowers the CPU priority of the calling job thread and of the runtime's thread pool (where node:zlib
 * deflates and inflates), so that on a small machine the HTTP thread and the application's own database
 * writers win the CPU when they need it, and the job takes what is left.
 *
 * Why: with two cores, a backup keeps three threads busy (reading pages, two deflating); without this,
 * `/api/health` p99 went above 25 ms and a writer in another process stalled for 50 ms (bench/README.md).
 * Linux only (per-thread nice via /proc); elsewhere, or without /proc, it does nothing. Raising a nice value
 * needs no privilege and cannot be undone. The pool is the process's: the HTTP thread's async file reads (a
 * download) also run on it, a little later under load; its request handling and JSON stay at full priority.
 */
export async function lowerJobThreadPriority(): Promise<void> {
  try {
    // Start the pool's threads first: they are created on first use.
    const run = promisify(deflateRaw);
    await Promise.all(Array.from({ length: 4 }, () => run(Buffer.alloc(64))));
    const self = Number(readlinkSync("/proc/thread-self").split("/").pop());
    for (const name of readdirSync("/proc/self/task")) {
      const tid = Number(name);
      const comm = readFileSync(`/proc/self/task/${name}/comm`, "utf8").trim();
      if (tid === self || /pool/i.test(comm)) setPriority(tid, BACKGROUND_NICE);
    }
  } catch {
    // not Linux, or /proc is not mounted: priorities stay as they are
  }
}
