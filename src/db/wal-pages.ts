import { open } from "node:fs/promises";
import { readFully } from "./read-fully.ts";

/** The two magic numbers of a WAL file's header (big- or little-endian checksums). */
const WAL_MAGIC = new Set([0x377f0682, 0x377f0683]);
const HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
/** WAL bytes read at a time while looking for frame headers. */
const READ_BYTES = 4 * 1024 * 1024;

/**
 * The numbers of every page that has a frame in the WAL file at `walPath` (SQLite's documented format: a 32-byte
 * header, then frames of a 24-byte header and a page), or undefined when the file is not a WAL of this page
 * size. A missing or empty file has no pages.
 *
 * Only frames carrying the header's salts count: frames left over from before the WAL last restarted carry older
 * ones and belong to no snapshot. No checksum is checked, so a frame being appended may count too; a page
 * listed for nothing is only read through SQLite instead of from the file (`snapshot-database.ts`).
 */
export async function walPages(walPath: string, pageSize: number): Promise<Set<number> | undefined> {
  const handle = await open(walPath, "r").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  const pages = new Set<number>();
  if (!handle) return pages;
  try {
    const size = (await handle.stat()).size;
    if (size < HEADER_BYTES) return pages;
    const header = new Uint8Array(HEADER_BYTES);
    await readFully(handle.fd, header, 0);
    const view = new DataView(header.buffer);
    if (!WAL_MAGIC.has(view.getUint32(0)) || view.getUint32(8) !== pageSize) return undefined;
    const salt1 = view.getUint32(16);
    const salt2 = view.getUint32(20);
    const frameBytes = FRAME_HEADER_BYTES + pageSize;
    const frames = Math.floor((size - HEADER_BYTES) / frameBytes);
    const framesPerRead = Math.max(1, Math.floor(READ_BYTES / frameBytes));
    const buffer = new Uint8Array(Math.min(frames, framesPerRead) * frameBytes); // one for every read
    const headers = new DataView(buffer.buffer);
    for (let first = 0; first < frames; first += framesPerRead) {
      const count = Math.min(framesPerRead, frames - first);
      const filled = await readFully(handle.fd, buffer.subarray(0, count * frameBytes), HEADER_BYTES + first * frameBytes);
      for (let i = 0; i < count && (i + 1) * frameBytes <= filled; i++) {
        const at = i * frameBytes;
        if (headers.getUint32(at + 8) === salt1 && headers.getUint32(at + 12) === salt2) pages.add(headers.getUint32(at));
      }
    }
    return pages;
  } finally {
    await handle.close();
  }
}
