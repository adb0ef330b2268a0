import type { PieceDeflaterName, ReuseCounts, VerifyReport } from "../archive/index.ts";
import type { SerializedError } from "../errors.ts";
import type { StoreDescriptor } from "../store/backup-store.ts";

/** Progress every job reports; the numbers are bytes and entries actually read from the sources. */
export interface JobProgress {
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  entriesDone: number;
  entriesTotal: number;
}

/** Archive the data directory into the store under `key`. */
export interface CreateBackupParams {
  kind: "create";
  dataDir: string;
  store: StoreDescriptor;
  key: string;
  producer: string;
  level: number;
  /** What deflates at the fast levels (`deflate-workers.ts`); ISA-L where it loads when absent. */
  deflater?: PieceDeflaterName;
  /**
   * Descriptors of database files that this process keeps open beside its own connection to them, by their name
   * at the data directory's root (the server's `data.db`): their snapshots read pages through them
   * (`snapshot-database.ts`). They stay open when the job ends.
   */
  databaseFds?: Record<string, number>;
  /** Encrypts every entry with WinZip AES-256 under this key (the configured backup key). */
  password?: string;
}

/** Check a stored archive and extract it into `stagingDir`, then check the extracted database. */
export interface ExtractBackupParams {
  kind: "extract";
  store: StoreDescriptor;
  key: string;
  stagingDir: string;
  /** Free disk space to leave to the app beside the restored data (`DEFAULT_RESTORE_RESERVE_BYTES` if absent). */
  reserveBytes?: number;
  /** The data directory the restore replaces: uploads it holds unchanged are copied from it (`live-copies.ts`). */
  liveDir?: string;
  /** Test hook: stop after the first extracted entry, so a crash test can kill the process mid-extraction. */
  pauseAt?: "extracting";
  /** Keys an encrypted archive may open with, tried in turn: the configured one, then older ones. */
  passwords?: string[];
}

/** Check an archive without extracting it: a stored one by key, or an unpublished upload by pending id. */
export interface CheckBackupParams {
  kind: "check";
  store: StoreDescriptor;
  key: string;
  pendingId?: string;
  /** As `ExtractBackupParams.passwords`. */
  passwords?: string[];
}

/** Where a verify may be told to stop and wait to be killed (crash tests, `BACKSTREAM_TEST_PAUSE_AT`). */
export const VERIFY_PAUSE_STEPS = [
  /** data.db's copy has begun: its first bytes are in the scratch folder. */
  "verify-copying",
  /** data.db is copied whole; the entries after it are being checked. */
  "verify-entries",
  /** Everything is read; `quick_check` of the copy is next. */
  "verify-quick-check",
] as const;
export type VerifyPauseStep = (typeof VERIFY_PAUSE_STEPS)[number];

/** Verify a stored archive: every checksum, all problems collected, and `quick_check` on a temp copy of data.db. */
export interface VerifyBackupParams {
  kind: "verify";
  store: StoreDescriptor;
  key: string;
  /**
   * The folder the job makes its scratch folder in (for the copy of data.db): the data directory's
   * `.pb_temp_to_delete/`, which every start empties, so a verify killed midway leaves nothing behind for long.
   */
  tempDir: string;
  /** Test hook: stop at this step and wait to be killed. */
  pauseAt?: VerifyPauseStep;
  /** As `ExtractBackupParams.passwords`. */
  passwords?: string[];
}

export type JobParams = CreateBackupParams | ExtractBackupParams | CheckBackupParams | VerifyBackupParams;

export interface CreateBackupResult {
  key: string;
  size: number;
  sha256: string;
  entries: number;
  /** How much deflated input was deflated now, and how much copied from an earlier backup (`block-reuse.ts`). */
  reuse: ReuseCounts;
  /** What deflated it ("isa-l", "libdeflate", "zlib"), when anything was deflated at the fast levels. */
  deflater?: string;
}

export interface CheckBackupResult {
  entries: number;
  bytes: number;
  hasManifest: boolean;
  /** Entries of an extraction copied from the live data directory rather than extracted, and their bytes. */
  copiedFromLive: { entries: number; bytes: number };
  /** What inflated the blocks of the archive's large entries ("isa-l", "zlib"), when any were. */
  inflater?: string;
}

/**
 * `POST /api/backups/{key}/verify`'s answer: the archive's `VerifyReport` (archive/verify-archive.ts) without
 * what stays on the job's side, with the database check's problem among `problems`.
 */
export type VerifyBackupResult = Pick<VerifyReport, "ok" | "entries" | "bytes" | "sha256" | "problems">;

export interface JobResults {
  create: CreateBackupResult;
  extract: CheckBackupResult;
  check: CheckBackupResult;
  verify: VerifyBackupResult;
}

/** Messages to a job worker. */
export type WorkerRequest = { type: "start"; params: JobParams } | { type: "cancel" };

/** Messages from a job worker. */
export type WorkerEvent =
  | { type: "progress"; progress: JobProgress }
  | { type: "done"; result: JobResults[JobParams["kind"]] }
  | { type: "error"; error: SerializedError };
