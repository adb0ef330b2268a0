import { uninitializedBytes } from "../uninitialized-bytes.ts";

/** A GET's whole body (a checksum sidecar: a few bytes). */
export async function readBody(body: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A ranged GET answered with another length than asked for (a connection cut short): worth another try. */
export class RangeLengthError extends Error {
  override name = "RangeLengthError";
}

/**
 * A ranged GET's body of exactly `length` bytes, gathered into one buffer of that size as it arrives (not zeroed
 * first: it is filled whole or thrown away). Gathering chunks and joining them held every range twice.
 */
export async function readRange(body: AsyncIterable<unknown>, length: number): Promise<Uint8Array> {
  const bytes = uninitializedBytes(length);
  let filled = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    if (filled + chunk.length > length) throw new RangeLengthError("long read");
    bytes.set(chunk, filled);
    filled += chunk.length;
  }
  if (filled !== length) throw new RangeLengthError("short read");
  return bytes;
}
