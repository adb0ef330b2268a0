import type { BackgroundDigest } from "../fs/file-digest.ts";
import type { ArchiveSourceReader } from "../archive/index.ts";
import type { RetryPolicy } from "./retry.ts";

/** What a store knows about one backup. */
export interface BackupInfo {
  key: string;
  size: number;
  modified: Date;
  /** SHA-256 of the whole archive, hex, when the store kept it (sidecar locally, object metadata on S3). */
  sha256?: string;
}

/** A byte range, both ends inclusive, as in HTTP. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface WriteOptions {
  /**
   * Whether the closed write must be readable (`openPending`) before `commit`: true (the default) for an upload,
   * which is checked before it is published. A backup the server archives itself needs no such check, and
   * without it S3 uploads straight to the key instead of to a temp object copied to the key at commit.
   */
  checkBeforeCommit?: boolean;
}

/** An archive being written: bytes go into `stream`; `commit` makes it visible whole, `abort` leaves nothing. */
export interface PendingWrite {
  /** Names the unpublished bytes for `BackupStore.openPending`, from any thread, once `stream` is closed (when written with `checkBeforeCommit`). */
  id: string;
  /**
   * Done with each chunk once that chunk's write resolves: it copies what it keeps longer (a part being filled),
   * so the writer may reuse the chunk's memory then (`writeArchive`'s `outputDoneOnWrite`; the store contract's
   * tests hold both stores to it).
   */
  stream: WritableStream<Uint8Array>;
  /** Publishes the archive under its key, with its checksum. Call after `stream` is closed. */
  commit(sha256: string): Promise<void>;
  /** Throws the bytes away; safe to call at any point, and more than once. */
  abort(): Promise<void>;
}

/** Random access to a stored archive, for readers that need the zip's central directory first. */
export interface RandomAccessSource extends ArchiveSourceReader {
  close(): Promise<void>;
  /**
   * Where reading the archive again costs little (a local file), its SHA-256 computed on a thread of its own
   * while the caller reads it (`fs/file-digest.ts`); absent where every byte read costs a download.
   */
  sha256BesideReaders?(): BackgroundDigest;
}

/**
 * Where backups live. Every implementation keeps the same contract, checked by one shared test suite
 * (test/support/store-contract.ts):
 * - a missing key is always `NotFoundError`, never a backend's own error;
 * - `write` is atomic: until `commit`, readers and `list` never see the key, and `abort` leaves nothing;
 * - `list` shows committed backups only: no temp files, partial uploads or checksum sidecars;
 * - other failures are `StorageError` with a message that names the problem and carries no secret or path.
 */
export interface BackupStore {
  list(): Promise<BackupInfo[]>;
  /** Throws `NotFoundError` when the key is not stored. */
  stat(key: string): Promise<BackupInfo>;
  /** Streams the archive or a byte range of it. Throws `NotFoundError` when the key is not stored. */
  read(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
  /** Opens the archive for random access. Throws `NotFoundError` when the key is not stored. */
  open(key: string): Promise<RandomAccessSource>;
  write(key: string, options?: WriteOptions): Promise<PendingWrite>;
  /** Random access to a closed but unpublished write, so it can be checked before `commit`. */
  openPending(id: string): Promise<RandomAccessSource>;
  /** Throws `NotFoundError` when the key is not stored. */
  delete(key: string): Promise<void>;
  /** Removes what an earlier crash left behind (temp files, orphan sidecars). */
  cleanup(): Promise<void>;
  /**
   * Tells the store that another thread (a job worker) just published (`present`) or deleted a key, so that
   * an eventually consistent backend keeps retrying its listings and reads until they agree.
   */
  expect(key: string, present: boolean): void;
  /**
   * Each backup's block index (`block-reuse.ts`), on stores whose random reads are cheap enough for the next
   * backup to copy an earlier one's deflated pieces instead of deflating them again. Absent on S3: reading
   * 300 MB back over a network link costs more than deflating it on most links.
   */
  blockIndexes?: BlockIndexFiles;
}

/** Small files kept beside backups, one per key at most, removed with their backup and never listed. */
export interface BlockIndexFiles {
  /** The text written for `key`, or undefined when there is none. */
  read(key: string): Promise<string | undefined>;
  /** Writes it whole (atomically), once `key` is published. */
  write(key: string, text: string): Promise<void>;
}

/** How a worker rebuilds the store on its side of the thread boundary: data, never an instance. */
export type StoreDescriptor =
  | { kind: "local"; dir: string }
  | {
      kind: "s3";
      endpoint: string;
      bucket: string;
      region: string;
      accessKey: string;
      secret: string;
      forcePathStyle: boolean;
      /** Multipart part size in bytes (default 16 MiB; S3's minimum is 5 MiB). */
      partSize?: number;
      /** For tests: copies over `maxSingleCopy` (default 5 GiB, S3's limit) go in parts of `copyPartSize` (512 MiB). */
      largeCopy?: { maxSingleCopy?: number; copyPartSize?: number };
      retry?: RetryPolicy;
    };
