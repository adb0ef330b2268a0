/**
 * The inflate workers (`InflateWorkers`): a `BlockInflater` on worker threads (`workers/inflate.worker.ts`)
 * for a restore's or a verify's blocks, which also hash the large entries' bytes, and the messages it exchanges
 * with them.
 */
import { availableParallelism } from "node:os";
import { CorruptBlockError, READ_SIZE, type BlockInflater, type InflatedBlock } from "./block-inflate.ts";
import { ReadBuffers } from "./read-buffers.ts";
import { SharedSlots } from "./shared-slots.ts";
import { HashChannels, type HashReply, type HashRequest, type Hashing } from "./worker-hashing.ts";
import { WorkerPool } from "./worker-pool.ts";

/** What inflates the blocks: ISA-L where its library loads (`src/native/isal-inflate.ts`), node:zlib otherwise. */
export type InflaterName = "isa-l" | "zlib";

export type InflateRequest =
  /**
   * Sent once first: the slots compressed blocks are copied into and the slots they inflate into, the same
   * number of each (slot `n` of one goes with slot `n` of the other), and what to inflate with where it loads.
   */
  | { type: "setup"; inputs: SharedArrayBuffer; inputBytes: number; outputs: SharedArrayBuffer; outputBytes: number; inflater: InflaterName }
  /** Inflate the `length` bytes in input slot `slot` into exactly `size` bytes of output slot `slot`. */
  | { type: "inflate"; id: number; slot: number; length: number; size: number }
  /** The workers also hash entries' bytes, each entry on one of them (`worker-hashing.ts`). */
  | HashRequest;

export type InflateReply =
  /** `ok` false: the block is not valid deflate data, or does not inflate to exactly `size` bytes. */
  | { id: number; ok: boolean; error?: string }
  | { type: "ready"; inflater: InflaterName }
  | HashReply;

export interface InflateWorkersOptions {
  /** Slots of each kind: blocks inflating or lent out at once before `inflate` waits for one to be released. */
  slots?: number;
  /** "zlib" to leave ISA-L alone even where it is installed. */
  inflater?: InflaterName;
  /** The worker's module: `inflate.worker.ts` but in tests of what happens when a worker dies. */
  script?: URL;
}

const WORKER_URL = new URL("../../../workers/inflate.worker.ts", import.meta.url);

/** The largest block inflated on the workers: the block size our writer uses (`deflate-block.ts`). */
const OUTPUT_SLOT_BYTES = 1024 * 1024;
/**
 * Room for a block's compressed bytes: deflate grows a block by at most a few bytes per 16 KiB (stored blocks) and
 * its flush marker (`fitsEntry`'s bound), so a block whose output fits its slot fits here.
 */
const INPUT_SLOT_BYTES = OUTPUT_SLOT_BYTES + 4096;
/**
 * Enough for a restore's three entries at once, each with four blocks inflating and one lent out
 * (`inflateBlocks`, `read-archive.ts`); with fewer, blocks wait their turn.
 */
const DEFAULT_SLOTS = 15;
/**
 * Compressed reads kept for the next: an entry's read being handed out, the one read ahead, and one more whose
 * blocks are still inflating (4 in flight, `inflateBlocks`); entries inflating side by side make more, dropped
 * after use.
 */
const KEPT_READ_BUFFERS = 4;

/**
 * Worker threads that inflate an entry's blocks (`inflate.worker.ts`), one per core, started on first use: with
 * ISA-L through `bun:ffi` where it loads, about 1.5× node:zlib's speed.
 *
 * Why not node:zlib's pool, as before: besides zlib's speed, each of its blocks came back in a new buffer: about 700 MB
 * of fresh memory for a restore of the bench's data. Here a block is copied into a slot of shared memory
 * (`shared-slots.ts`; Bun copies what it transfers), inflated by a worker into the output slot that goes with it,
 * and lent to the caller until it releases it, so the same memory serves every block.
 */
export class InflateWorkers implements BlockInflater {
  readonly maxBlockBytes = OUTPUT_SLOT_BYTES;
  /** A few reads' worth kept for the entries' compressed reads: a restore's reads come in the same memory. */
  readonly readBuffers = new ReadBuffers(READ_SIZE, KEPT_READ_BUFFERS);
  readonly #pool: WorkerPool<InflateRequest, InflateReply>;
  readonly #outputs: SharedSlots;
  readonly #inputs: SharedArrayBuffer;
  /** One per worker, each hash on the worker its channel posts to. */
  readonly #hashChannels: HashChannels;
  #inflaterUsed: InflaterName | undefined;

  constructor(count = availableParallelism(), options: InflateWorkersOptions = {}) {
    const slots = options.slots ?? DEFAULT_SLOTS;
    this.#outputs = new SharedSlots(slots, OUTPUT_SLOT_BYTES);
    this.#inputs = new SharedArrayBuffer(slots * INPUT_SLOT_BYTES);
    const setup: InflateRequest = {
      type: "setup",
      inputs: this.#inputs,
      inputBytes: INPUT_SLOT_BYTES,
      outputs: this.#outputs.buffer,
      outputBytes: OUTPUT_SLOT_BYTES,
      inflater: options.inflater ?? "isa-l",
    };
    this.#pool = new WorkerPool<InflateRequest, InflateReply>(count, options.script ?? WORKER_URL, {
      name: "An inflate worker",
      setup: () => setup,
      onNotice: (reply, index) => {
        if (!("type" in reply)) return;
        if (reply.type === "ready") this.#inflaterUsed = reply.inflater;
        else this.#hashChannels.handle(reply, index);
      },
      onFail: (error) => {
        this.#hashChannels.fail(error);
        this.#outputs.fail(error);
      },
    });
    this.#hashChannels = new HashChannels(this.#pool.count, (index, request) => this.#pool.post(index, request));
  }

  /**
   * Hashing on the workers, beside their share of the blocks, each new hash on the next worker in turn. Why: on
   * the job's thread an entry's SHA-256 was the largest part of that thread's work in a restore (0.2–0.3 s of
   * 1.1–1.6 s for a 400–500 MB database, whose blocks inflate on the workers meanwhile, measured), and the
   * thread also hands out every block and write. Here it costs one copy a MiB (`HashChannel`).
   */
  get hashing(): Hashing {
    return this.#hashChannels.hashing;
  }

  async inflate(compressed: Uint8Array, size: number): Promise<InflatedBlock> {
    return this.#inflateIn(await this.#outputs.acquire(), compressed, size);
  }

  /** What the workers inflate with, once one of them has said. */
  get inflaterUsed(): InflaterName | undefined {
    return this.#inflaterUsed;
  }

  /** Ends the workers; blocks still inflating fail. */
  close(): void {
    this.#pool.close("The inflate workers were closed.");
  }

  async #inflateIn(slot: number, compressed: Uint8Array, size: number): Promise<InflatedBlock> {
    let lent = false;
    try {
      // Neither fits a block whose output fits its slot (`fitsEntry`'s bound).
      if (size > OUTPUT_SLOT_BYTES || compressed.length > INPUT_SLOT_BYTES) throw new CorruptBlockError("The block is larger than a slot.");
      new Uint8Array(this.#inputs, slot * INPUT_SLOT_BYTES, compressed.length).set(compressed);
      const reply = await this.#pool.request((id) => ({ type: "inflate", id, slot, length: compressed.length, size }));
      if (!("ok" in reply) || !reply.ok) throw new CorruptBlockError(("error" in reply && reply.error) || "The block does not inflate.");
      lent = true;
      let released = false;
      return {
        data: this.#outputs.view(slot, size),
        release: () => {
          if (released) return;
          released = true;
          this.#outputs.release(slot);
        },
      };
    } finally {
      if (!lent) this.#outputs.release(slot);
    }
  }
}
