import { MAX_REUSABLE_PIECES, parseBlockIndex, recordCount, ReusablePieces, serializeBlockIndex, type BlockIndex } from "../archive/reuse/index.ts";
import type { BackupStore } from "../store/backup-store.ts";

/** How many of the newest backups are tried for an index: uploads and other levels have none to offer. */
const CANDIDATES = 5;

/**
 * The newest indexed backup's deflated pieces, for the next backup to copy instead of deflating again
 * (`block-reuse.ts`), or undefined when there is nothing to reuse: the store keeps no indexes, or none of its
 * newest backups has a readable index for this level that still matches the archive (size and SHA-256).
 * Never throws: a backup without reuse is only slower.
 */
export async function openReusablePieces(store: BackupStore, level: number): Promise<{ pieces: ReusablePieces; close(): Promise<void> } | undefined> {
  const indexes = store.blockIndexes;
  if (!indexes) return undefined;
  const newest = (await store.list().catch(() => [])).sort((a, b) => b.modified.getTime() - a.modified.getTime()).slice(0, CANDIDATES);
  for (const info of newest) {
    const text = await indexes.read(info.key).catch(() => undefined);
    const index = text === undefined ? undefined : parseBlockIndex(text);
    if (!index || index.key !== info.key || index.level !== level || recordCount(index.records) > MAX_REUSABLE_PIECES) continue;
    if (info.size !== index.archiveSize || info.sha256 !== index.archiveSha256) continue;
    const opened = await open(store, index);
    if (opened) return opened;
  }
  return undefined;
}

async function open(store: BackupStore, index: BlockIndex): Promise<{ pieces: ReusablePieces; close(): Promise<void> } | undefined> {
  try {
    const source = await store.open(index.key);
    // Opened, the archive stays readable even if it is deleted meanwhile (a local file's handle).
    if (source.size !== index.archiveSize) {
      await source.close();
      return undefined;
    }
    return { pieces: new ReusablePieces(index, source), close: () => source.close() };
  } catch {
    return undefined;
  }
}

/** Keeps the index of the backup just published, for the next ones. A failure only costs them its reuse. */
export async function saveBlockIndex(store: BackupStore, index: BlockIndex): Promise<void> {
  await store.blockIndexes?.write(index.key, serializeBlockIndex(index)).catch(() => {});
}
