/**
 * Fixed-size slots in one `SharedArrayBuffer`, for handing bytes to worker threads: the buffer is posted to a
 * worker once, and each request then names a slot instead of carrying its bytes.
 *
 * Why: Bun copies a transferred `ArrayBuffer` (a 1 MiB round trip cost about 210 µs of CPU here, a message
 * without one 14 µs), so the deflate workers' blocks and the hashes' batches, 1.8 GB a first backup of the
 * bench's data, cost more to move than to hash. A slot is copied into once, read in place by the worker, and
 * taken back when the worker says it is done with it.
 * Slots are handed out and taken back on the thread that made them; the workers only read them.
 */
export class SharedSlots {
  readonly buffer: SharedArrayBuffer;
  readonly slotBytes: number;
  readonly #free: number[];
  /**
   * Callers waiting for a slot, served first come, first served: a released slot goes to the first of them, and
   * no caller comes ahead of one waiting. Why strictly: an entry of a restore holds some slots while asking for
   * more (`inflateBlocks`), and is only sure to go on if its oldest request is served before its later ones.
   */
  readonly #waiting: { resolve: (slot: number) => void; reject: (error: Error) => void }[] = [];
  #failure: Error | undefined;

  constructor(count: number, slotBytes: number) {
    this.buffer = new SharedArrayBuffer(count * slotBytes);
    this.slotBytes = slotBytes;
    this.#free = Array.from({ length: count }, (_, i) => count - 1 - i);
  }

  /** A free slot, waiting for one to be released if none is (or others wait); fails once `fail` was called. */
  async acquire(): Promise<number> {
    if (this.#failure) throw this.#failure;
    const slot = this.#waiting.length === 0 ? this.#free.pop() : undefined;
    if (slot !== undefined) return slot;
    return new Promise<number>((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /**
   * A free slot now, or undefined when none is (or others wait). For memory that is only a saving: a caller that
   * cannot wait without holding up the slots' release (`DeflateWorkers`' output slots) takes its own instead.
   */
  tryAcquire(): number | undefined {
    return this.#failure || this.#waiting.length > 0 ? undefined : this.#free.pop();
  }

  /** Gives `slot` back: to the first caller waiting, else for the next `acquire`. */
  release(slot: number): void {
    const next = this.#failure ? undefined : this.#waiting.shift();
    if (next) next.resolve(slot);
    else this.#free.push(slot);
  }

  /** The first `length` bytes of `slot`. */
  view(slot: number, length = this.slotBytes): Uint8Array {
    return slotView(this.buffer, this.slotBytes, slot, length);
  }

  /** Fails every waiting and later `acquire`: the slots will not come back (a worker ended). */
  fail(error: Error): void {
    this.#failure ??= error;
    for (const waiting of this.#waiting.splice(0)) waiting.reject(this.#failure);
  }
}

/** The first `length` bytes of `slot` in a worker's copy of a `SharedSlots` buffer. */
export function slotView(buffer: SharedArrayBuffer, slotBytes: number, slot: number, length: number): Uint8Array {
  if (!Number.isInteger(slot) || slot < 0 || length < 0 || length > slotBytes || (slot + 1) * slotBytes > buffer.byteLength) {
    throw new Error(`No slot ${slot} of ${length} bytes.`);
  }
  return new Uint8Array(buffer, slot * slotBytes, length);
}
