/**
 * The SHA-256 of a file, computed on a thread of its own (`workers/file-digest.worker.ts`) while the caller reads
 * the same file: a restore proves a local archive is the one stored without hashing on its own thread.
 *
 * Why: on the restore's thread the archive's hash was about a ninth of a local restore (0.43 s of 3.72 s on the
 * bench's 292 MB archive), beside the inflating, writing and the entries' hashes that thread must do itself. A
 * thread of its own reads the file front to back into one buffer and hashes it, on a core the inflate workers
 * leave idle while the restore waits on its disk writes: that restore through the server took 3.65 s instead of
 * 3.96 s (medians of 4, alternated).
 */
import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** Which file: its device and inode, as an open descriptor of it reports them. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** Bytes read at a time, into one buffer for the whole file. */
const READ_BYTES = 4 * 1024 * 1024;

/**
 * SHA-256 (hex) of the file at `path`, which must still be the file `identity` names (a file renamed over it since
 * the caller opened it is not hashed in its place). Synchronous: for a thread of its own.
 */
export function fileSha256Sync(path: string, identity: FileIdentity): string {
  const fd = openSync(path, "r");
  try {
    const { dev, ino } = fstatSync(fd);
    if (dev !== identity.dev || ino !== identity.ino) throw new Error("The archive was replaced while it was read.");
    const hash = createHash("sha256");
    const buffer = new Uint8Array(READ_BYTES);
    for (let position = 0, read; (read = readSync(fd, buffer, 0, READ_BYTES, position)) > 0; position += read) {
      hash.update(buffer.subarray(0, read));
    }
    return hash.digest("hex");
  } finally {
    closeSync(fd);
  }
}

export type FileDigestRequest = { path: string; identity: FileIdentity };
export type FileDigestReply = { sha256: string } | { error: string };

/** A digest being computed on its thread: `done` settles with it; `stop` ends the thread (`done` then rejects). */
export interface BackgroundDigest {
  done: Promise<string>;
  stop(): void;
}

const WORKER_URL = new URL("../../workers/file-digest.worker.ts", import.meta.url);

/** `fileSha256Sync` on a thread of its own. `script` is the worker's module (another one only in tests). */
export function fileSha256InWorker(path: string, identity: FileIdentity, script = WORKER_URL): BackgroundDigest {
  const worker = new Worker(script);
  let settled = false;
  let resolveDone!: (hex: string) => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {}); // seen by whoever awaits it; a stopped one is not awaited
  const settle = (outcome: () => void) => {
    if (settled) return;
    settled = true;
    worker.terminate();
    outcome();
  };
  const fail = (message: string) => settle(() => rejectDone(new Error(message)));
  worker.onmessage = ({ data: reply }: MessageEvent<FileDigestReply>) => ("error" in reply ? fail(reply.error) : settle(() => resolveDone(reply.sha256)));
  worker.onerror = () => fail("The archive's checksum could not be computed: its thread failed.");
  // Ended without an answer (killed, out of memory): a restore waiting on it must not wait forever.
  worker.addEventListener("close", () => fail("The archive's checksum ended without an answer."));
  worker.postMessage({ path, identity } satisfies FileDigestRequest);
  return { done, stop: () => fail("The archive's checksum was stopped.") };
}
