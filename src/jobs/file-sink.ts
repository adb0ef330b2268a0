// A new file as a WritableStream of chunks, for the jobs that write an archive's entries out: a restore's
// extraction (check-backup-job.ts) and a verify's copy of data.db (verify-backup-job.ts).
import { closeSync, fsync, mkdirSync, openSync, writeSync } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import { WriteBehind } from "../fs/write-behind.ts";

/** A file written whole and still open: `finish` makes it durable or not, and closes it. A FileHandle is one. */
export interface WrittenFile {
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface FileSinkOptions {
  /** The new file's mode. */
  mode: number;
  /** The size the file will have, if known: a small file is made and written with synchronous calls. */
  size?: number;
  /**
   * Flush a large file's data in the background as it is written (`write-behind.ts`), for a file that `finish`
   * makes durable: its final fsync then waits for the last few MiB only, and an app's fsync meanwhile does not
   * queue behind all of it.
   */
  writeBehind?: boolean;
  /** Runs once the first chunk is written (a crash test's pause point). */
  afterFirstWrite?: () => Promise<void>;
  /**
   * Takes the file once every chunk is written, and closes it (at once, or after an fsync in the background).
   * Closes it at once when absent.
   */
  finish?: (file: WrittenFile, bytes: number) => Promise<void>;
}

/**
 * Files up to this size are made, written and closed with synchronous calls. The sinks run on a job's own thread,
 * where each asynchronous call is a round trip through the runtime's thread pool (about 30 µs on this VM, against
 * 3–4 µs for the call): creating, writing and closing an 8 KB file took 100 µs that way and 24 µs this way, and a
 * restore of 50 000 small uploads made four such calls a file. Larger files keep asynchronous writes, so that the
 * copy into the page cache overlaps the thread's inflating and hashing.
 */
export const SYNC_WRITE_BYTES = 256 * 1024;

/**
 * Creates `path` (never replacing a file: `wx`), its folders first, and writes every chunk to it whole. A failed
 * write or an abort closes the file; a close hands it to `finish`.
 */
export async function fileSink(path: string, options: FileSinkOptions): Promise<WritableStream<Uint8Array>> {
  const file = options.size !== undefined && options.size <= SYNC_WRITE_BYTES ? createSync(path, options.mode) : await create(path, options.mode);
  // A stream whose write failed is errored: `abort` is then never called, so the write closes the file itself.
  // Left to the collector, an open FileHandle ends the whole worker ("closed during garbage collection").
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await file.close();
  };
  let written = 0;
  const writeBehind = options.writeBehind && file.datasync ? new WriteBehind(file.datasync) : undefined;
  return new WritableStream({
    async write(chunk) {
      try {
        await file.write(chunk);
        await writeBehind?.wrote(chunk.length);
      } catch (error) {
        await close().catch(() => {});
        throw error;
      }
      if (written === 0) await options.afterFirstWrite?.();
      written += chunk.length;
    },
    async close() {
      try {
        await writeBehind?.settled();
      } catch (error) {
        await close().catch(() => {});
        throw error;
      }
      if (!options.finish) return close();
      closed = true;
      await options.finish(file, written);
    },
    async abort() {
      await writeBehind?.settled().catch(() => {});
      await close();
    },
  });
}

interface NewFile extends WrittenFile {
  /** Writes all of `chunk` after what is written. */
  write(chunk: Uint8Array): Promise<void> | void;
  /** Flushes the data written so far, on the runtime's pool (files written with asynchronous calls only). */
  datasync?(): Promise<void>;
}

async function create(path: string, mode: number): Promise<NewFile> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, "wx", mode);
  return {
    async write(chunk) {
      let done = 0;
      while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
    },
    datasync: () => handle.datasync(),
    sync: () => handle.sync(),
    close: () => handle.close(),
  };
}

function createSync(path: string, mode: number): NewFile {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "wx", mode);
  return {
    ...writtenFile(fd),
    write(chunk) {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done);
    },
  };
}

/** An open descriptor as a `WrittenFile`: closed with a synchronous call, fsynced (rarely: where no syncfs covers small files) on the pool. */
export function writtenFile(fd: number): WrittenFile {
  return {
    sync: () => new Promise((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve()))),
    close: async () => closeSync(fd),
  };
}
