/**
 * SHA-256 hashing of the archive and its entries on the deflate workers (`HashChannel` on this side,
 * `hashRequestHandler` on the worker's), or on the calling thread (`inlineHashing`) where there are none.
 */
import { createHash, type Hash } from "node:crypto";
import { SharedSlots, slotView } from "./shared-slots.ts";

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

/**
 * Streams smaller than this are hashed on the calling thread even where a hashing thread is offered
 * (`hasherFor`): a backup's and a restore's entries alike. Why: a stream's digest is a round trip to the thread
 * and sends the batch it is in, so 50 000 small uploads would be 50 000 messages each way, where hashing 10 KB
 * here takes a few microseconds. A backup of the bench's 50 000 small uploads took 6.0–6.9 s this way against
 * 7.1–10.0 s with every entry hashed on the deflate workers (inline, alternated).
 */
const THREAD_MIN_BYTES = 1024 * 1024;

/** A hasher for a stream of `size` bytes: on `hashing` if it is large, on this thread if it is small. */
export function hasherFor(hashing: Hashing, size: number): Sha256Hasher {
  return size >= THREAD_MIN_BYTES ? hashing.begin() : inlineHashing.begin();
}

/**
 * The thread learns the channel's slots once (`hash-setup`); each batch then names its slot and, in order, the
 * streams (an entry, or the whole archive) its bytes belong to: `segments` is [stream, length, stream, length…].
 */
export type HashRequest =
  | { type: "hash-setup"; slots: SharedArrayBuffer; slotBytes: number }
  | { type: "hash-update"; slot: number; segments: number[] }
  | { type: "hash-digest"; stream: number };
export type HashReply =
  /** The batch in `slot` is hashed; the slot may be filled again. */
  | { type: "hash-ack"; slot: number }
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
 * The batches are slots of shared memory (`shared-slots.ts`), filled in turn by every stream the channel
 * hashes: an entry's bytes and the archive's share a batch, and only one batch at a time is being filled, so
 * however many streams are open, a stream waiting for a slot waits only for batches already sent.
 */
export class HashChannel implements Hashing {
  readonly #post: (request: HashRequest) => void;
  readonly #digests = new Map<number, { resolve: (hex: string) => void; reject: (error: Error) => void }>();
  /** Made, and posted to the thread, on the first update. */
  #slots: SharedSlots | undefined;
  #batch: { slot: number; filled: number; segments: number[] } | undefined;
  #nextStream = 0;
  #failure: Error | undefined;

  /** `post` sends a request to the thread, whose replies go to `handle`. */
  constructor(post: (request: HashRequest) => void) {
    this.#post = post;
  }

  /** Takes one of the thread's replies. */
  handle(reply: HashReply): void {
    if (reply.type === "hash-ack") {
      this.#slots?.release(reply.slot);
    } else if (reply.type === "hash-digest") {
      this.#digests.get(reply.stream)?.resolve(reply.hex);
      this.#digests.delete(reply.stream);
    } else this.fail(new Error(`A hash failed: ${reply.message}`));
  }

  /** A hasher for one more stream. */
  begin(): Sha256Hasher {
    const stream = this.#nextStream++;
    return {
      update: (chunk) => this.#update(stream, chunk),
      digest: () => {
        if (this.#failure) return Promise.reject(this.#failure);
        this.#flush();
        return new Promise<string>((resolve, reject) => {
          this.#digests.set(stream, { resolve, reject });
          this.#post({ type: "hash-digest", stream });
        });
      },
    };
  }

  /** Copies `chunk` into the batch being filled, sending each batch that fills up. */
  async #update(stream: number, chunk: Uint8Array): Promise<void> {
    if (this.#failure) throw this.#failure;
    let offset = 0;
    while (offset < chunk.length) {
      const slots = this.#openSlots();
      if (!this.#batch) {
        const slot = await slots.acquire();
        // Another stream may have opened a batch while this one waited: fill that one first.
        if (this.#batch) slots.release(slot);
        else this.#batch = { slot, filled: 0, segments: [] };
        continue;
      }
      const batch = this.#batch;
      const n = Math.min(slots.slotBytes - batch.filled, chunk.length - offset);
      slots.view(batch.slot).set(chunk.subarray(offset, offset + n), batch.filled);
      batch.filled += n;
      offset += n;
      const { segments } = batch;
      if (segments.at(-2) === stream) segments[segments.length - 1]! += n;
      else segments.push(stream, n);
      if (batch.filled === slots.slotBytes) this.#flush();
    }
  }

  #openSlots(): SharedSlots {
    if (!this.#slots) {
      // One batch being filled beside those in flight.
      this.#slots = new SharedSlots(MAX_IN_FLIGHT + 1, BATCH_BYTES);
      this.#post({ type: "hash-setup", slots: this.#slots.buffer, slotBytes: BATCH_BYTES });
    }
    return this.#slots;
  }

  /** Sends the batch being filled, if any. */
  #flush(): void {
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    this.#post({ type: "hash-update", slot: batch.slot, segments: batch.segments });
  }

  /** Fails every pending and later hash with `error` (the thread ended). */
  fail(error: Error): void {
    this.#failure ??= error;
    for (const waiting of this.#digests.values()) waiting.reject(this.#failure);
    this.#digests.clear();
    this.#slots?.fail(this.#failure);
  }
}

/**
 * One `HashChannel` per worker of a pool, each new hash on the next worker in turn (`hashing`): the deflate and
 * inflate workers' hashing. `handle` takes a worker's hash reply, `fail` ends every channel.
 */
export class HashChannels {
  readonly #channels: HashChannel[];
  #next = 0;

  /** `post(index, request)` sends a request to the worker at `index`, one of `count`. */
  constructor(count: number, post: (index: number, request: HashRequest) => void) {
    this.#channels = Array.from({ length: count }, (_, i) => new HashChannel((request) => post(i, request)));
  }

  readonly hashing: Hashing = {
    begin: () => this.#channels[this.#next++ % this.#channels.length]!.begin(),
  };

  /** A hash reply from the worker at `index`. */
  handle(reply: HashReply, index: number): void {
    this.#channels[index]!.handle(reply);
  }

  fail(error: Error): void {
    for (const channel of this.#channels) channel.fail(error);
  }
}

/** The thread's side: answers `HashChannel`'s requests, keeping one hash per stream. */
export function hashRequestHandler(reply: (message: HashReply) => void): (request: HashRequest) => void {
  const hashes = new Map<number, Hash>();
  let slots: { buffer: SharedArrayBuffer; slotBytes: number } | undefined;
  const hashOf = (stream: number) => {
    let hash = hashes.get(stream);
    if (!hash) hashes.set(stream, (hash = createHash("sha256")));
    return hash;
  };
  return (request) => {
    try {
      if (request.type === "hash-setup") {
        slots = { buffer: request.slots, slotBytes: request.slotBytes };
      } else if (request.type === "hash-update") {
        if (!slots) throw new Error("No slots to hash from.");
        let at = 0;
        for (let i = 0; i < request.segments.length; i += 2) {
          const length = request.segments[i + 1]!;
          hashOf(request.segments[i]!).update(slotView(slots.buffer, slots.slotBytes, request.slot, at + length).subarray(at));
          at += length;
        }
        reply({ type: "hash-ack", slot: request.slot });
      } else {
        reply({ type: "hash-digest", stream: request.stream, hex: hashOf(request.stream).digest("hex") });
        hashes.delete(request.stream);
      }
    } catch (error) {
      reply({ type: "hash-error", message: error instanceof Error ? error.message : String(error) });
    }
  };
}
