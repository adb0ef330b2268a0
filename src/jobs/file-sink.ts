// A new file as a WritableStream of chunks, for the jobs that write an archive's entries out: a restore's
// extraction (check-backup-job.ts) and a verify's copy of data.db (verify-backup-job.ts).
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";

export interface FileSinkOptions {
  /** The new file's mode. */
  mode: number;
  /** Runs once the first chunk is written (a crash test's pause point). */
  afterFirstWrite?: () => Promise<void>;
  /**
   * Takes the handle once every chunk is written, and closes it (at once, or after an fsync in the background).
   * Closes it at once when absent.
   */
  finish?: (handle: FileHandle, bytes: number) => Promise<void>;
}

/**
 * Creates `path` (never replacing a file: `wx`), its folders first, and writes every chunk to it whole. A failed
 * write or an abort closes the file; a close hands it to `finish`.
 */
export async function fileSink(path: string, options: FileSinkOptions): Promise<WritableStream<Uint8Array>> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, "wx", options.mode);
  // A stream whose write failed is errored: `abort` is then never called, so the write closes the file itself.
  // Left to the collector, an open FileHandle ends the whole worker ("closed during garbage collection").
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  let written = 0;
  return new WritableStream({
    async write(chunk) {
      try {
        let done = 0;
        while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
      } catch (error) {
        await close().catch(() => {});
        throw error;
      }
      if (written === 0) await options.afterFirstWrite?.();
      written += chunk.length;
    },
    async close() {
      if (!options.finish) return close();
      closed = true;
      await options.finish(handle, written);
    },
    abort: close,
  });
}
