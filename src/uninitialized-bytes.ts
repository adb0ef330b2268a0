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
