import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { verifyArchive } from "../archive/index.ts";
import { quickCheck } from "../db/quick-check.ts";
import { redactPaths } from "../errors.ts";
import { createStore } from "../store/create-store.ts";
import type { JobContext } from "./create-backup-job.ts";
import { withEachKey } from "./archive-keys.ts";
import { fileSink } from "./file-sink.ts";
import type { VerifyBackupParams, VerifyBackupResult, VerifyPauseStep } from "./job-messages.ts";

/**
 * Verifies a stored archive end to end without touching live data: streams it through every checksum
 * (collecting all problems, not just the first), copies `data.db` to a scratch folder in `params.tempDir` (the
 * data directory's trash, emptied at every start) on the way, runs `PRAGMA quick_check` on that copy, and
 * deletes it.
 */
export function verifyBackupJob(params: VerifyBackupParams, context: JobContext = {}): Promise<VerifyBackupResult> {
  return withEachKey(params.passwords, (password) => verifyWithKey(params, context, password));
}

async function verifyWithKey(params: VerifyBackupParams, context: JobContext, password: string | undefined): Promise<VerifyBackupResult> {
  const store = await createStore(params.store);
  const info = await store.stat(params.key);
  await mkdir(params.tempDir, { recursive: true });
  const temp = await mkdtemp(join(params.tempDir, "verify-"));
  const dbCopy = join(temp, "data.db");
  const pause = async (step: VerifyPauseStep) => {
    if (params.pauseAt !== step) return;
    context.onProgress?.({ phase: "paused", bytesDone: 0, bytesTotal: 0, entriesDone: 0, entriesTotal: 0 });
    await new Promise(() => {});
  };
  let copied = false;
  const sink = async (path: string) => {
    if (copied) await pause("verify-entries");
    if (path !== "data.db") return undefined;
    // The copy of data.db; its first write and its close are the crash tests' pause points.
    return fileSink(dbCopy, {
      mode: 0o600,
      afterFirstWrite: () => pause("verify-copying"),
      finish: async (file) => {
        await file.close();
        copied = true;
      },
    });
  };
  const source = await store.open(params.key).catch(async (error) => {
    await rm(temp, { recursive: true, force: true });
    throw error;
  });
  // A local archive's SHA-256 on a thread of its own, as a restore's (`check-backup-job.ts`).
  const besideReaders = source.sha256BesideReaders?.();
  try {
    const report = await verifyArchive(source, {
      ...(info.sha256 ? { expectedSha256: info.sha256 } : {}),
      ...(besideReaders ? { sha256: besideReaders.done } : {}),
      ...(context.signal ? { signal: context.signal } : {}),
      sink,
      onProgress: (p) => context.onProgress?.(p),
      ...(password ? { password } : {}),
    });
    const problems = [...report.problems];
    if (report.intact.includes("data.db")) {
      await pause("verify-quick-check");
      context.onProgress?.({ phase: "checking database", bytesDone: 0, bytesTotal: 0, entriesDone: report.entries, entriesTotal: report.entries });
      const dbProblems = await quickCheck(dbCopy).catch((error: Error) => [redactPaths(error.message)]);
      if (dbProblems.length) problems.push(`data.db fails PRAGMA quick_check: ${dbProblems.slice(0, 5).join("; ")}`);
    }
    return { ok: problems.length === 0, entries: report.entries, bytes: report.bytes, sha256: report.sha256, problems };
  } finally {
    besideReaders?.stop();
    await source.close();
    await rm(temp, { recursive: true, force: true });
  }
}
