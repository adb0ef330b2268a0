/**
 * Write-behind for a large file being written: an `fdatasync` in the background every few MiB, one in flight at a
 * time, as PostgreSQL's `*_flush_after` settings do.
 *
 * Why: without it the kernel starts writing a new file's pages out late (at its dirty thresholds, or at the final
 * fsync), so hundreds of MB pile up in the page cache. An app's own fsync (a checkpoint of data.db, a commit with
 * `synchronous=FULL`) then waits behind all of them on ext4, and the writer's final fsync waits for the whole
 * file at once instead of the part written since the last flush (bench/README.md measures both).
 */

/** Bytes written between background flushes, unless BACKSTREAM_FLUSH_AFTER_MB says. */
const DEFAULT_FLUSH_AFTER_MB = 16;

/**
 * BACKSTREAM_FLUSH_AFTER_MB (validated at start, config.ts), read here because archives and restored files are
 * written in job workers that inherit the server's environment: 0 leaves all flushing to the final fsync.
 */
export function flushAfterBytes(): number {
  const mb = process.env.BACKSTREAM_FLUSH_AFTER_MB;
  return (mb && /^\d+$/.test(mb) ? Number(mb) : DEFAULT_FLUSH_AFTER_MB) * 1024 * 1024;
}

export class WriteBehind {
  #unflushed = 0;
  #flushing: Promise<void> = Promise.resolve();

  /** `datasync` flushes the file's data (a FileHandle's `datasync`); `everyBytes` of 0 never calls it. */
  constructor(
    private readonly datasync: () => Promise<void>,
    private readonly everyBytes = flushAfterBytes(),
  ) {}

  /**
   * Counts `bytes` just written; past `everyBytes` since the last flush, waits for that one and starts the next. A
   * failed flush (ENOSPC, EIO) is thrown here or by `settled`, whichever comes first.
   */
  async wrote(bytes: number): Promise<void> {
    if (this.everyBytes <= 0) return;
    this.#unflushed += bytes;
    if (this.#unflushed < this.everyBytes) return;
    this.#unflushed = 0;
    await this.#flushing;
    this.#flushing = this.datasync();
    this.#flushing.catch(() => {}); // surfaces at the next await
  }

  /** Waits for the flush in flight; throws its failure. */
  settled(): Promise<void> {
    return this.#flushing;
  }
}
