import { read } from "node:fs";
import { promisify } from "node:util";

const readAt = promisify(read);

/** Reads into all of `into` from `position` of the file open as `fd`, or up to its end; returns the bytes read. */
export async function readFully(fd: number, into: Uint8Array, position: number): Promise<number> {
  let filled = 0;
  while (filled < into.length) {
    const { bytesRead } = await readAt(fd, into, filled, into.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}
