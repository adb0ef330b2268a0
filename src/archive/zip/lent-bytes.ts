/**
 * Bytes lent by their producer for one trip to the output: memory it wants back (a slot of the deflate workers'
 * shared memory, `DeflateWorkers`) once the bytes are written or copied.
 *
 * Why: a block's data used to arrive from a worker in new memory each time, and Bun's allocator hands freed
 * memory back to the system, so every block was faulted in afresh: on the bench's VM a page fault costs about
 * 15 µs, and a backup of 500 MB of blobs faulted 150 000 pages, about 2 core-seconds (docs/operations.md).
 * Lending is keyed by the array itself, so the zip writer and the queues between need not know: whoever copies
 * the bytes (`batchedWrites`) or is done writing them (`writeArchive`) gives them back, and bytes never given
 * back (a failed archive drops its queue) only cost their producer a slot.
 */

const lenders = new WeakMap<Uint8Array, () => void>();

/** Marks `bytes` as lent: `giveBack` calls `onReturn`, once. */
export function lend(bytes: Uint8Array, onReturn: () => void): Uint8Array {
  lenders.set(bytes, onReturn);
  return bytes;
}

/** Whether `bytes` are lent and not yet given back. */
export function isLent(bytes: Uint8Array): boolean {
  return lenders.has(bytes);
}

/** Hands `bytes` back to their lender, if they are lent: their memory may be reused at once. */
export function giveBack(bytes: Uint8Array): void {
  const onReturn = lenders.get(bytes);
  if (!onReturn) return;
  lenders.delete(bytes);
  onReturn();
}

/** Bytes of one's own: a copy of lent ones (given back at once), the bytes themselves otherwise. */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  if (!isLent(bytes)) return bytes;
  const copy = new Uint8Array(bytes);
  giveBack(bytes);
  return copy;
}
