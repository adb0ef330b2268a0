/**
 * Reading an entry's bytes in order with the next read already on its way (`readingAhead`).
 */

/** A range to read: where it starts and how many bytes it holds. */
export interface ReadRange {
  offset: number;
  length: number;
}

/**
 * Reads `ranges` through `read` in order and yields each range with its bytes; as each is handed out, the read of
 * the next one starts, so it is on its way while the caller uses this one. A read starts only once the one before
 * it is done: a reader that keeps state from one read to the next (a decrypting one) sees them in order.
 *
 * Why: a read that takes time of its own (an encrypted entry's ciphertext decrypted, a ranged GET) left the
 * inflating threads idle while it ran, once per 4 MiB read; with the next read on its way they have work.
 */
export async function* readingAhead(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  ranges: Iterable<ReadRange>,
): AsyncGenerator<ReadRange & { bytes: Uint8Array }> {
  const pending = ranges[Symbol.iterator]();
  const start = () => {
    const next = pending.next();
    if (next.done) return undefined;
    const bytes = read(next.value.offset, next.value.length);
    bytes.catch(() => {}); // awaited when its turn comes; one never reached must not be an unhandled rejection
    return { ...next.value, bytes };
  };
  for (let current = start(); current; ) {
    const bytes = await current.bytes;
    const range = { offset: current.offset, length: current.length };
    current = start();
    yield { ...range, bytes };
  }
}
