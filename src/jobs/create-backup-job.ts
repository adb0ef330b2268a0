import { writeArchive } from "../archive/index.ts";
import { collectSources } from "./collect-sources.ts";
import { openReusablePieces, saveBlockIndex } from "./block-indexes.ts";
import { createStore } from "../store/create-store.ts";
import type { CreateBackupParams, CreateBackupResult, JobProgress } from "./job-messages.ts";

export interface JobContext {
  signal?: AbortSignal;
  onProgress?: (progress: JobProgress) => void;
}

/**
 * Streams a consistent archive of the data directory into the store. The store's write is atomic: the key
 * appears only once the archive is complete and synced, and any failure aborts it, leaving nothing behind.
 * Where the store keeps block indexes, pieces the newest indexed backup already deflated are copied from it,
 * and this backup's index is kept once it is published.
 */
export async function createBackupJob(params: CreateBackupParams, context: JobContext = {}): Promise<CreateBackupResult> {
  const store = await createStore(params.store);
  const { sources, count: entriesTotal, databases, fileBytes } = await collectSources(params.dataDir, params.databaseFds);
  // A database's size is estimated from its file until its snapshot opens (first thing the archive does);
  // from then on the total is exact, so keep it current without summing every file again.
  const currentTotal = () => fileBytes + databases.reduce((sum, s) => sum + s.size, 0);
  const bytesTotal = currentTotal();
  context.onProgress?.({ phase: "archiving", bytesDone: 0, bytesTotal, entriesDone: 0, entriesTotal });
  const pending = await store.write(params.key, { checkBeforeCommit: false });
  // An encrypted archive reuses nothing: an earlier archive's pieces are ciphertext under other salts.
  const previous = params.password ? undefined : await openReusablePieces(store, params.level); // never throws
  try {
    const written = await writeArchive(sources, pending.stream, {
      level: params.level,
      ...(params.deflater ? { deflater: params.deflater } : {}),
      producer: params.producer,
      outputDoneOnWrite: true,
      ...(params.password ? { password: params.password } : {}),
      indexBlocks: store.blockIndexes !== undefined,
      ...(previous ? { reuse: previous.pieces } : {}),
      ...(context.signal ? { signal: context.signal } : {}),
      onProgress: (p) =>
        context.onProgress?.({ phase: "archiving", bytesDone: p.bytesDone, bytesTotal: Math.max(currentTotal(), p.bytesDone), entriesDone: p.entriesDone, entriesTotal }),
    });
    const total = currentTotal();
    context.onProgress?.({ phase: "storing", bytesDone: total, bytesTotal: total, entriesDone: entriesTotal, entriesTotal });
    await pending.commit(written.sha256);
    if (written.pieces) {
      await saveBlockIndex(store, { key: params.key, archiveSize: written.size, archiveSha256: written.sha256, level: params.level, ...written.pieces });
    }
    const deflater = written.deflater ? { deflater: written.deflater } : {};
    return { key: params.key, size: written.size, sha256: written.sha256, entries: written.entries, reuse: written.reuse, ...deflater };
  } catch (error) {
    await pending.abort().catch(() => {});
    throw error;
  } finally {
    await previous?.close().catch(() => {});
  }
}
