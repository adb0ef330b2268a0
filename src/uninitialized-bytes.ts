import { Buffer } from "node:buffer";

/**
 * `length` bytes in an array buffer of their own, not zeroed first: for buffers a read or a copy fills whole at
 * once (zeroing 1 MiB chunks was a tenth of the job thread's time in a backup that deflates little).
 * A plain `Uint8Array`, not a `Buffer`, whose `slice` would share memory instead of copying.
 */
export function uninitializedBytes(length: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
}

/** Memory to read a chunk of `length` bytes into: new each time (`uninitializedBytes`), or used again (`reusedBuffers`). */
export type ChunkBuffers = (length: number) => Uint8Array;

/**
 * Memory for reads, used again: each call hands out the next of `count` arrays of `size` bytes in turn (a view of
 * `length` bytes; a new array when `length` is larger), not zeroed. For streams whose reader is done with a chunk
 * once it reads the next one (`ArchiveSource`): with a stream's one chunk read ahead, three in turn are never
 * handed out again while still held.
 *
 * Why: a backup of the bench's data read 800 fresh 1 MiB buffers, garbage that the runtime's collector saw too
 * late (the job thread's peak memory rose by tens of MB once nothing else it allocated prompted a collection).
 */
export function reusedBuffers(count: number, size: number): ChunkBuffers {
  const buffers: Uint8Array[] = [];
  let next = 0;
  return (length) => {
    if (length > size) return uninitializedBytes(length);
    const i = next++ % count;
    return (buffers[i] ??= uninitializedBytes(size)).subarray(0, length);
  };
}
