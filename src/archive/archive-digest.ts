/**
 * The SHA-256 of a whole archive, taken from the reads a restore or a verify makes anyway, so that an archive
 * can be proven to be the one that was stored before anything it holds is trusted.
 *
 * SHA-256 runs front to back, but readers do not: a restore reads three entries at once, and zip.js reads the
 * central directory at the end first. So every read is offered to the hash: bytes that continue it are hashed
 * at once, bytes ahead of it are kept (up to a budget) until it gets there, and whatever it never saw is read
 * again at the end (`sha256`): for a source where every byte read costs a download (S3), each is fetched about
 * once. Where reading again is cheap (a local file), the store hashes the file on a thread of its own instead
 * (`RandomAccessSource.sha256BesideReaders`), and this is not used.
 */
import { createHash } from "node:crypto";
import { collectingEvery } from "../collect-garbage.ts";
import type { ArchiveSourceReader } from "./zip/index.ts";

export interface DigestingSourceOptions {
  /** Bytes read ahead of the hash that may be kept for it (copies), instead of read again. */
  stashBytes?: number;
}

/** The problem when an archive's SHA-256 is not the one its store kept: a verify lists it, a restore refuses. */
export const SHA256_MISMATCH = "The archive's SHA-256 does not match the one stored with it: the file changed after it was written.";

/** Bytes asked of the source at a time when the hash reads for itself. */
const FILL_CHUNK = 4 * 1024 * 1024;
const DEFAULT_STASH_BYTES = 32 * 1024 * 1024;

/** An `ArchiveSourceReader` that hashes what passes through it; `sha256()` completes the hash. */
export class DigestingSource implements ArchiveSourceReader {
  readonly size: number;
  /** As its source's: what this keeps of a read is a copy, and it hashes the rest before handing it out. */
  readonly freshReads: boolean | undefined;
  readonly #inner: ArchiveSourceReader;
  readonly #hash = createHash("sha256");
  readonly #stashLimit: number;
  #hashedTo = 0;
  /** Copies of bytes read ahead of `#hashedTo`, sorted by offset. */
  #stash: { offset: number; bytes: Uint8Array }[] = [];
  #stashed = 0;
  #filling: Promise<void> | undefined;
  #stopped = false;
  #digest: string | undefined;

  constructor(inner: ArchiveSourceReader, options: DigestingSourceOptions = {}) {
    this.#inner = inner;
    this.size = inner.size;
    this.freshReads = inner.freshReads;
    this.#stashLimit = options.stashBytes ?? DEFAULT_STASH_BYTES;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const bytes = await this.#inner.read(offset, length);
    this.#offer(offset, bytes);
    return bytes;
  }

  skip(ranges: [start: number, end: number][]): void {
    this.#inner.skip?.(ranges);
  }

  /** Hex SHA-256 of every byte of the archive, reading what the readers did not. */
  async sha256(signal?: AbortSignal): Promise<string> {
    if (this.#digest) return this.#digest;
    this.#startFilling(signal);
    await this.#filling;
    this.#digest ??= this.#hash.digest("hex");
    return this.#digest;
  }

  /** Stops a background pass (the read failed or was cancelled); the source itself is closed by its owner. */
  stop(): void {
    this.#stopped = true;
    this.#stash = [];
    this.#stashed = 0;
  }

  #startFilling(signal?: AbortSignal) {
    this.#filling ??= this.#fill(signal);
    // A background pass that fails is seen by `sha256`; until then it must not be an unhandled rejection.
    this.#filling.catch(() => {});
  }

  async #fill(signal?: AbortSignal): Promise<void> {
    // What it reads is garbage once hashed; nothing else here prompts a collection (`collectGarbage`).
    const collect = collectingEvery();
    while (this.#hashedTo < this.size) {
      if (this.#stopped) throw new Error("The archive's checksum was not completed.");
      signal?.throwIfAborted();
      const next = this.#stash[0]?.offset ?? this.size;
      const at = this.#hashedTo;
      const bytes = await this.#inner.read(at, Math.min(FILL_CHUNK, Math.max(next - at, 1), this.size - at));
      if (bytes.length === 0) throw new Error("The archive ended early while it was read.");
      this.#offer(at, bytes);
      collect(bytes.length);
    }
  }

  #offer(offset: number, bytes: Uint8Array) {
    if (this.#stopped || this.#digest) return;
    const end = offset + bytes.length;
    if (end <= this.#hashedTo) return;
    if (offset <= this.#hashedTo) {
      this.#take(bytes.subarray(this.#hashedTo - offset));
      this.#drainStash();
    } else if (this.#stashed + bytes.length <= this.#stashLimit) {
      // A copy: a reader may hand out memory it reuses (and a small slice must not keep a large window alive).
      this.#stash.splice(this.#firstAfter(offset), 0, { offset, bytes: bytes.slice() });
      this.#stashed += bytes.length;
    }
  }

  /** Index of the first kept piece that starts after `offset` (binary search: a restore may keep thousands). */
  #firstAfter(offset: number): number {
    let low = 0;
    let high = this.#stash.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#stash[middle]!.offset <= offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  #take(bytes: Uint8Array) {
    this.#hash.update(bytes);
    this.#hashedTo += bytes.length;
  }

  /** Hashes kept pieces that the hash has reached, and drops those it has passed. */
  #drainStash() {
    let used = 0;
    for (; used < this.#stash.length && this.#stash[used]!.offset <= this.#hashedTo; used++) {
      const { offset, bytes } = this.#stash[used]!;
      this.#stashed -= bytes.length;
      if (offset + bytes.length > this.#hashedTo) this.#take(bytes.subarray(this.#hashedTo - offset));
    }
    if (used) this.#stash.splice(0, used);
  }
}
