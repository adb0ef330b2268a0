import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifyArchive } from "../archive/verify-archive.ts";
import { quickCheck } from "../db/quick-check.ts";
import { redactPaths } from "../errors.ts";
import { createStore } from "../store/create-store.ts";
import type { JobContext } from "./create-backup-job.ts";
import type { VerifyBackupParams, VerifyBackupResult } from "./job-messages.ts";

/**
 * Verifies a stored archive end to end without touching live data: streams it through every checksum
 * (collecting all problems, not just the first), copies `data.db` to a temp directory outside the data
 * directory on the way, runs `PRAGMA quick_check` on that copy, and deletes it.
 */
export async function verifyBackupJob(params: VerifyBackupParams, context: JobContext = {}): Promise<VerifyBackupResult> {
  const store = await createStore(params.store);
  const info = await store.stat(params.key);
  const source = await store.open(params.key);
  const temp = await mkdtemp(join(params.tempDir ?? tmpdir(), "backstream-verify-"));
  const dbCopy = join(temp, "data.db");
  try {
    const report = await verifyArchive(source, {
      ...(info.sha256 ? { expectedSha256: info.sha256 } : {}),
      ...(context.signal ? { signal: context.signal } : {}),
      sink: async (path) => (path === "data.db" ? fileSink(dbCopy) : undefined),
      onProgress: (p) => context.onProgress?.(p),
    });
    const problems = [...report.problems];
    if (report.intact.includes("data.db")) {
      context.onProgress?.({ phase: "checking database", bytesDone: 0, bytesTotal: 0, entriesDone: report.entries, entriesTotal: report.entries });
      const dbProblems = await quickCheck(dbCopy).catch((error: Error) => [redactPaths(error.message)]);
      if (dbProblems.length) problems.push(`data.db fails PRAGMA quick_check: ${dbProblems.slice(0, 5).join("; ")}`);
    }
    return { ok: problems.length === 0, entries: report.entries, bytes: report.bytes, sha256: report.sha256, problems };
  } finally {
    await source.close();
    await rm(temp, { recursive: true, force: true });
  }
}

async function fileSink(path: string): Promise<WritableStream<Uint8Array>> {
  const handle = await open(path, "wx", 0o600);
  return new WritableStream({
    async write(chunk) {
      let done = 0;
      while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
    },
    close: () => handle.close(),
    abort: () => handle.close(),
  });
}
