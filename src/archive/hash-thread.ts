import { createHash, type Hash } from "node:crypto";

/** Hashes one stream of bytes with SHA-256 as they go by. */
export interface Sha256Hasher {
  /** Takes the next chunk (copied or hashed at once: the caller keeps it); resolves when more may follow. */
  update(chunk: Uint8Array): Promise<void>;
  /** The hex SHA-256 of everything given. */
  digest(): Promise<string>;
}

/** Somewhere to start hashers: a thread (`HashChannel`) or this one (`inlineHashing`). */
export interface Hashing {
  begin(): Sha256Hasher;
}

/** Hashes on the calling thread. */
export const inlineHashing: Hashing = {
  begin() {
    const hash = createHash("sha256");
    return { update: async (chunk) => void hash.update(chunk), digest: async () => hash.digest("hex") };
  },
};

/** Messages name the stream (an entry, or the whole archive) they belong to; each has a hash of its own. */
export type HashRequest = { type: "hash-update"; stream: number; data: ArrayBuffer; length: number } | { type: "hash-digest"; stream: number };
export type HashReply =
  /** `length` bytes of `data` are hashed; `data` comes back to be filled again. */
  | { type: "hash-ack"; data: ArrayBuffer; length: number }
  | { type: "hash-digest"; stream: number; hex: string }
  | { type: "hash-error"; message: string };

/** Bytes copied at once to the hashing thread: one message per MiB keeps the messaging cost small. */
const BATCH_BYTES = 1024 * 1024;
/** Batches sent but not yet hashed before `update` waits: the thread's queue cannot grow without bound. */
const MAX_IN_FLIGHT = 4;

/**
 * Hashing on another thread (one of the deflate workers, `deflate-workers.ts`) for a writer on this one: every
 * entry's SHA-256 and the whole archive's.
 *
 * Why: a SHA-256 runs over all its bytes in order, so it cannot be split across cores. On the job's thread the
 * entries' and the archive's hashes were about a third of a backup's critical path once most pieces were reused
 * instead of deflated (0.45 s for the bench's 800 MB of entries, 0.17 s for its 300 MB archive), beside the page
 * reads and output that thread must do itself. Here they cost it one copy per MiB. A thread of their own held
 * 15–20 MB more at peak than sharing a deflate worker, for no measurable speed.
 * The batches go back and forth and are filled again: a thread that only drops what it is sent collects it
 * rarely.
 */
export class HashChannel implements Hashing {
  readonly #post: (request: HashRequest, transfer: ArrayBuffer[]) => void;
  readonly #digests = new Map<number, { resolve: (hex: string) => void; reject: (error: Error) => void }>();
  readonly #free: ArrayBuffer[] = [];
  #nextStream = 0;
  #inFlight = 0;
  /** Hashers waiting for batches to come back: several streams may be fed at once, and each must wake. */
  readonly #waiting: (() => void)[] = [];
  #failure: Error | undefined;

  /** `post` sends a request to the thread, whose replies go to `handle`. */
  constructor(post: (request: HashRequest, transfer: ArrayBuffer[]) => void) {
    this.#post = post;
  }

  /** Takes one of the thread's replies. */
  handle(reply: HashReply): void {
    if (reply.type === "hash-ack") {
      this.#inFlight--;
      this.#free.push(reply.data);
      this.#wake();
    } else if (reply.type === "hash-digest") {
      this.#digests.get(reply.stream)?.resolve(reply.hex);
      this.#digests.delete(reply.stream);
    } else this.fail(new Error(`A hash failed: ${reply.message}`));
  }

  /** A hasher for one more stream. */
  begin(): Sha256Hasher {
    const stream = this.#nextStream++;
    let batch: Uint8Array | undefined;
    let filled = 0;
    const flush = () => {
      if (!batch || filled === 0) return;
      const data = batch.buffer as ArrayBuffer; // allocated here: never shared
      this.#inFlight++;
      this.#post({ type: "hash-update", stream, data, length: filled }, [data]);
      batch = undefined;
      filled = 0;
    };
    return {
      update: async (chunk) => {
        if (this.#failure) throw this.#failure;
        let offset = 0;
        while (offset < chunk.length) {
          batch ??= new Uint8Array(this.#free.pop() ?? new ArrayBuffer(BATCH_BYTES));
          const n = Math.min(batch.length - filled, chunk.length - offset);
          batch.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === batch.length) flush();
        }
        while (this.#inFlight > MAX_IN_FLIGHT && !this.#failure) await new Promise<void>((resolve) => this.#waiting.push(resolve));
        if (this.#failure) throw this.#failure;
      },
      digest: () => {
        if (this.#failure) return Promise.reject(this.#failure);
        flush();
        return new Promise<string>((resolve, reject) => {
          this.#digests.set(stream, { resolve, reject });
          this.#post({ type: "hash-digest", stream }, []);
        });
      },
    };
  }

  /** Fails every pending and later hash with `error` (the thread ended). */
  fail(error: Error): void {
    this.#failure ??= error;
    for (const waiting of this.#digests.values()) waiting.reject(this.#failure);
    this.#digests.clear();
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiting.splice(0)) wake();
  }
}

/** The thread's side: answers `HashChannel`'s requests, keeping one hash per stream. */
export function hashRequestHandler(reply: (message: HashReply, transfer: ArrayBuffer[]) => void): (request: HashRequest) => void {
  const hashes = new Map<number, Hash>();
  return (request) => {
    try {
      let hash = hashes.get(request.stream);
      if (!hash) hashes.set(request.stream, (hash = createHash("sha256")));
      if (request.type === "hash-update") {
        hash.update(new Uint8Array(request.data, 0, request.length));
        reply({ type: "hash-ack", data: request.data, length: request.length }, [request.data]);
      } else {
        reply({ type: "hash-digest", stream: request.stream, hex: hash.digest("hex") }, []);
        hashes.delete(request.stream);
      }
    } catch (error) {
      reply({ type: "hash-error", message: error instanceof Error ? error.message : String(error) }, []);
    }
  };
}
