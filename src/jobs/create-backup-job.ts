import { writeArchive } from "../archive/write-archive.ts";
import { collectSources } from "../backups/collect-sources.ts";
import { createStore } from "../store/create-store.ts";
import type { CreateBackupParams, CreateBackupResult, JobProgress } from "./job-messages.ts";

export interface JobContext {
  signal?: AbortSignal;
  onProgress?: (progress: JobProgress) => void;
}

/**
 * Streams a consistent archive of the data directory into the store. The store's write is atomic: the key
 * appears only once the archive is complete and synced, and any failure aborts it, leaving nothing behind.
 */
export async function createBackupJob(params: CreateBackupParams, context: JobContext = {}): Promise<CreateBackupResult> {
  const store = await createStore(params.store);
  const { sources, bytesTotal } = await collectSources(params.dataDir);
  const entriesTotal = sources.length;
  context.onProgress?.({ phase: "archiving", bytesDone: 0, bytesTotal, entriesDone: 0, entriesTotal });
  const pending = await store.write(params.key);
  try {
    const written = await writeArchive(sources, pending.stream, {
      level: params.level,
      producer: params.producer,
      ...(context.signal ? { signal: context.signal } : {}),
      onProgress: (p) =>
        context.onProgress?.({ phase: "archiving", bytesDone: p.bytesDone, bytesTotal: Math.max(bytesTotal, p.bytesDone), entriesDone: p.entriesDone, entriesTotal }),
    });
    context.onProgress?.({ phase: "storing", bytesDone: bytesTotal, bytesTotal, entriesDone: entriesTotal, entriesTotal });
    await pending.commit(written.sha256);
    return { key: params.key, size: written.size, sha256: written.sha256, entries: written.manifest.entries.length };
  } catch (error) {
    await pending.abort().catch(() => {});
    throw error;
  }
}
