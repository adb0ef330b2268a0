/**
 * An in-order queue of output pieces, some still being produced (a block deflating on the thread pool), that
 * writes each piece as soon as it and everything before it are ready.
 *
 * Why: it lets the zip writer go on reading and hashing the next entries while earlier blocks deflate, so both
 * cores stay busy across many small files too, not only inside one large entry. Memory stays bounded: `push`
 * waits, writing the oldest pieces, while more than `maxPendingBytes` of input is held by pending pieces.
 */
export class OrderedOutput {
  readonly #write: (data: Uint8Array) => void | Promise<void>;
  readonly #maxPendingBytes: number;
  readonly #queue: { data: Promise<Uint8Array> | Uint8Array; weight: number; onWrite?: (offset: number) => void }[] = [];
  #pendingBytes = 0;
  /** Bytes written so far: the offset of the next piece. */
  offset = 0;

  constructor(write: (data: Uint8Array) => void | Promise<void>, maxPendingBytes: number) {
    this.#write = write;
    this.#maxPendingBytes = maxPendingBytes;
  }

  /**
   * Queues `data` behind everything queued before. `weight` is the memory the piece holds until written (its
   * input); `onWrite` learns the offset the piece is written at.
   */
  async push(data: Promise<Uint8Array> | Uint8Array, weight: number, onWrite?: (offset: number) => void): Promise<void> {
    // A failure surfaces when the piece's turn comes; this only keeps it from being reported as unhandled first.
    if (data instanceof Promise) data.catch(() => {});
    this.#queue.push({ data, weight, ...(onWrite ? { onWrite } : {}) });
    this.#pendingBytes += weight;
    while (this.#pendingBytes > this.#maxPendingBytes && this.#queue.length > 1) await this.#writeOldest();
  }

  /** Writes everything queued. */
  async drain(): Promise<void> {
    while (this.#queue.length) await this.#writeOldest();
  }

  async #writeOldest(): Promise<void> {
    const piece = this.#queue.shift()!;
    this.#pendingBytes -= piece.weight;
    const data = await piece.data;
    piece.onWrite?.(this.offset);
    this.offset += data.length;
    await this.#write(data);
  }
}
