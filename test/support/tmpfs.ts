// A real full disk for tests: a small tmpfs, size and inode count both capped, so ENOSPC comes from the kernel
// where it would on a real server. Mounting needs root (CAP_SYS_ADMIN). Where that is missing a suite skips and
// says so, except under CI=true: CI runs as root, and a disk-full suite that quietly skipped there would prove
// nothing, so it fails instead (`requireTmpfs`).
import { test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const PAGE = 4096;

export function mountTmpfs(at: string, options: { bytes: number; inodes: number }): boolean {
  const args = ["mount", "-t", "tmpfs", "-o", `size=${options.bytes},nr_inodes=${options.inodes},mode=0700`, "tmpfs", at];
  return Bun.spawnSync(args, { stderr: "ignore" }).exitCode === 0;
}

export function unmountTmpfs(at: string): void {
  // Lazily: a file the runtime has yet to close must not keep the mount (and its temp folder) behind.
  Bun.spawnSync(["umount", "--lazy", at], { stderr: "ignore" });
}

/** Whether this process may mount a tmpfs (tried once, on a folder of its own). */
export const canMountTmpfs: boolean = (() => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  const probe = join(tmpdir(), `backstream-mount-probe-${process.pid}`);
  mkdirSync(probe, { recursive: true });
  try {
    const mounted = mountTmpfs(probe, { bytes: 65536, inodes: 16 });
    if (mounted) unmountTmpfs(probe);
    return mounted;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

/**
 * Whether the calling suite should skip: true where no tmpfs can be mounted, with a warning, or, under CI=true,
 * with a failing test registered in its place.
 */
export function skipWithoutTmpfs(suite: string): boolean {
  if (canMountTmpfs) return false;
  if (process.env.CI === "true") {
    test(`${suite}: a tmpfs can be mounted (CI runs as root)`, () => {
      throw new Error(`${suite} needs to mount a tmpfs (root) and cannot here; under CI=true that is a failure, not a skip`);
    });
    return true;
  }
  console.warn(`${suite}: skipped, this process cannot mount a tmpfs (needs root)`);
  return true;
}

/**
 * Fills the file system holding `folder` with one file, leaving `sparePages` pages of 4 KiB free (tmpfs counts file
 * data only); returns a function that frees them again.
 */
export async function fillPages(folder: string, sparePages: number): Promise<() => Promise<void>> {
  const path = join(folder, ".filler");
  const filler = await open(path, "w");
  try {
    const page = new Uint8Array(PAGE);
    let pages = 0;
    for (;;) {
      try {
        await filler.write(page, 0, PAGE, pages * PAGE);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
        break;
      }
      pages++;
    }
    await filler.truncate(Math.max(0, pages - sparePages) * PAGE);
  } finally {
    await filler.close();
  }
  return () => rm(path, { force: true });
}
