import { mkdir, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { readArchive } from "../archive/read-archive.ts";
import { quickCheck } from "../db/snapshot-database.ts";
import { InvalidBackupError } from "../errors.ts";
import { createStore } from "../store/create-store.ts";
import type { CheckBackupParams, CheckBackupResult, ExtractBackupParams } from "./job-messages.ts";
import type { JobContext } from "./create-backup-job.ts";

/**
 * Reads a stored archive and checks every path and checksum; with a staging directory it also extracts
 * the entries there (files fsynced) and checks that the extracted `data.db` passes `PRAGMA quick_check`.
 * The caller owns the staging directory and removes it on failure.
 */
export async function checkBackupJob(
  params: CheckBackupParams | ExtractBackupParams,
  context: JobContext = {},
): Promise<CheckBackupResult> {
  const store = await createStore(params.store);
  const source = await store.open(params.key);
  const stagingDir = params.kind === "extract" ? params.stagingDir : undefined;
  const written: string[] = [];
  try {
    const report = await readArchive(source, {
      ...(context.signal ? { signal: context.signal } : {}),
      onProgress: (p) => context.onProgress?.({ phase: stagingDir ? "extracting" : "checking", ...p }),
      ...(stagingDir ? { sink: (path: string) => fileSink(join(stagingDir, path), written) } : {}),
    });
    if (stagingDir) {
      // Every staged file is durable before the job reports success, so before the swap's journal is written.
      await syncFiles(written);
      context.onProgress?.({ phase: "checking database", bytesDone: report.bytes, bytesTotal: report.bytes, entriesDone: report.entries, entriesTotal: report.entries });
      const problems = await quickCheck(join(stagingDir, "data.db")).catch((error: Error) => [error.message]);
      if (problems.length) throw new InvalidBackupError(`The restored data.db fails its integrity check: ${problems.slice(0, 3).join("; ")}`);
    }
    return { entries: report.entries, bytes: report.bytes, hasManifest: report.manifest !== undefined };
  } finally {
    await source.close();
  }
}

/**
 * A file written chunk by chunk; its path goes to `written` on close so that `syncFiles` fsyncs it before the
 * restore commits (then a later rename publishes whole files). One batch of fsyncs at the end, several at a
 * time, instead of one fsync per file in sequence: the same guarantee, and the disk can merge the flushes.
 */
async function fileSink(path: string, written: string[]): Promise<WritableStream<Uint8Array>> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, "wx", 0o644);
  return new WritableStream({
    async write(chunk) {
      let done = 0;
      while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
    },
    async close() {
      await handle.close();
      written.push(path);
    },
    async abort() {
      await handle.close();
    },
  });
}

/** fsyncs every file in `paths`, a few at a time (fsync through a new descriptor flushes the file's data all the same). */
async function syncFiles(paths: string[], parallel = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const handle = await open(paths[next++]!, "r");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, paths.length) }, worker));
}
