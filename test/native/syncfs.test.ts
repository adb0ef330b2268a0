import { expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canSyncFileSystem, syncFileSystem } from "../../src/native/syncfs.ts";

// The restore relies on one syncfs for its small files (check-backup-job.ts): on Linux under Bun it must load and
// succeed, or restores would silently fall back to an fsync per file.
test.skipIf(process.platform !== "linux")("syncfs loads on Linux under Bun, and flushes a folder's file system", async () => {
  expect(await canSyncFileSystem()).toBe(process.env.BACKSTREAM_SYNCFS !== "off");
  const dir = await mkdtemp(join(tmpdir(), "backstream-syncfs-"));
  try {
    await writeFile(join(dir, "a.txt"), "written, then made durable by one call");
    await syncFileSystem(dir);
    await expect(syncFileSystem(join(dir, "missing"))).rejects.toThrow();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
