/**
 * The deflate workers (`DeflateWorkers`): a `DeflateBlock` on worker threads (`workers/deflate.worker.ts`) that
 * also fingerprints pieces, leaves out those an earlier archive offers, and hashes the archive and its entries;
 * and the messages it exchanges with them.
 */
import { availableParallelism } from "node:os";
import { concatBytes } from "./concat-bytes.ts";
import type { BlockBuffer, BlockPiece, DeflateBlock, DeflatedBlock, PiecedBlock } from "./deflate-block.ts";
import { HashChannels, type HashReply, type HashRequest, type Hashing } from "./worker-hashing.ts";
import { FINGERPRINT_BYTES, newFingerprintKey } from "./piece-fingerprint.ts";
import { SharedSlots } from "./shared-slots.ts";
import { WorkerPool } from "./worker-pool.ts";
import { giveBack, isLent, lend } from "../zip/index.ts";
import { collectingEvery } from "../../collect-garbage.ts";

export type DeflateRequest =
  | {
      type: "deflate";
      id: number;
      /**
       * Where a copy of the block is, in its first `length` bytes: a slot of the `inputs` sent with `setup`, or
       * shared memory of its own for a block larger than a slot.
       */
      input: number | SharedArrayBuffer;
      length: number;
      /** A slot of the `outputs` sent with `setup` to write the block's data into, if it fits there. */
      output?: number;
      last: boolean;
      level: number;
      /** Whether to fingerprint each piece's input (with the key from `setup`), for the archive's block index. */
      fingerprint: boolean;
      /** Whether pieces found among the reusable ones are left to the caller instead of deflated. */
      reuse: boolean;
    }
  /**
   * Sent once first: which compressor to deflate pieces with where it loads, the slots blocks are copied into
   * (`shared-slots.ts`), and when pieces are fingerprinted, the key (`piece-fingerprint.ts`) and the pieces an
   * earlier archive offers, sorted for lookups (`block-reuse.ts`), in shared memory. The worker answers with the
   * compressor it uses.
   */
  | {
      type: "setup";
      deflater: PieceDeflaterName;
      inputs: SharedArrayBuffer;
      slotBytes: number;
      outputs: SharedArrayBuffer;
      outputSlotBytes: number;
      fingerprintKey?: Uint8Array;
      lookup?: Uint8Array;
    }
  /** The workers also hash the archive and its entries, each stream on one of them (`worker-hashing.ts`). */
  | HashRequest;

/**
 * A block's reply also says its input slot may be filled again. Its `output` is the block's data, or the data's
 * length when it was written into the output slot the request named.
 */
export type DeflateReply =
  | ({ id: number; output: Uint8Array | number } & Omit<PiecedBlock, "output">)
  | { id: number; error: string }
  | { type: "ready"; deflater: PieceDeflaterName }
  | HashReply;

/**
 * What deflates the pieces of a block at the fast levels: ISA-L where its library is installed and loads (about
 * 1.8× libdeflate's speed for 4% more output, `src/native/isal-deflate.ts`), libdeflate otherwise or when asked.
 */
export type PieceDeflaterName = "isa-l" | "libdeflate";

/**
 * An earlier archive's pieces as the workers use them: the key they were fingerprinted with, their records sorted
 * for lookups in shared memory, and their bytes read back checked (`ReusablePieces`, `reuse/block-reuse.ts`).
 * Declared here so the engine does not depend on the reuse cache.
 */
export interface ReusablePieceSource {
  readonly fingerprintKey: Uint8Array;
  readonly lookup: Uint8Array;
  read(numbers: number[]): Promise<{ data: Uint8Array; crc32: number }[] | undefined>;
}

export interface DeflateWorkersOptions {
  /**
   * Fingerprint every piece's input (`piece-fingerprint.ts`) and hand the pieces back with the block: with the
   * key of the archive reused, or else a new one (`fingerprintKey`).
   */
  fingerprint?: boolean;
  /** An earlier archive whose pieces stand in for pieces of the same input (implies `fingerprint`). */
  reuse?: ReusablePieceSource;
  /** The worker's module: `deflate.worker.ts` but in tests of what happens when a worker dies. */
  script?: URL;
  /** "libdeflate" to leave ISA-L alone even where it is installed; "isa-l" (the default) uses it where it loads. */
  deflater?: PieceDeflaterName;
}

const WORKER_URL = new URL("../../../workers/deflate.worker.ts", import.meta.url);

/** Size of the slots blocks are copied into: the deflater's block size (a larger block gets memory of its own). */
const SLOT_BYTES = 1024 * 1024;
/**
 * Blocks in slots at once: those the zip writer lets wait (`MAX_PENDING_BYTES`, 4 MiB), the one it is filling
 * (`blockBuffer`), and some to spare; a block asking for more waits for a slot.
 */
const INPUT_SLOTS = 8;
/**
 * Size of the slots blocks are deflated into: a slot's block and room to spare, for stored pieces' headers (5
 * bytes a piece) and zlib's growth on incompressible input (about 0.03%). Data that does not fit comes in memory
 * of its own.
 */
const OUTPUT_SLOT_BYTES = SLOT_BYTES + 64 * 1024;
/**
 * Blocks whose data may lie in output slots at once: those waiting in the zip writer's queue (4 MiB of input, and
 * one more while the next is pushed), the one being written, and some to spare. A block finding none free gets
 * memory of its own instead of waiting: a slot comes back only once its block is written, and blocks are written
 * only while new ones are pushed, so waiting could hold up the very writes that free slots.
 */
const OUTPUT_SLOTS = 8;
/**
 * Blocks of fewer input bytes get memory of their own for their data: small arrays come from the allocator's
 * pages in use, and one small file's block holding a 1 MiB slot while it waits among hundreds would leave none for
 * the large blocks, whose fresh memory is what costs (`lent-bytes.ts`).
 */
const LENT_OUTPUT_MIN_BYTES = 64 * 1024;

/**
 * Worker threads that deflate blocks with ISA-L or libdeflate (`deflate.worker.ts`), one per core, started on
 * first use.
 *
 * Why workers: both run on the calling thread (ISA-L through `bun:ffi`, libdeflate through `Bun.deflateSync`);
 * node:zlib's async calls use the thread pool, but zlib is slower (PERF-NOTES). Blocks reach the workers
 * through shared memory (`shared-slots.ts`), not transferred: Bun copies what it transfers. Threads created by
 * a job thread share its lowered priority, like the pool (`thread-priority.ts`). They also fingerprint each
 * piece for reuse when asked (`block-reuse.ts`), and hash the archive and its entries (`hashing`,
 * `worker-hashing.ts`).
 */
export class DeflateWorkers {
  readonly #pool: WorkerPool<DeflateRequest, DeflateReply>;
  #fingerprint: boolean;
  /** The key pieces are fingerprinted with, when they are: an index of them must keep it. */
  readonly fingerprintKey: Uint8Array | undefined;
  readonly #reuse: ReusablePieceSource | undefined;
  readonly #deflater: PieceDeflaterName;
  #deflaterUsed: PieceDeflaterName | undefined;
  /**
   * The slots blocks are copied into. Why reused: a worker that only drops what it is sent collects it rarely;
   * when blocks were only hashed for reuse, not deflated, they came faster than that and the process held 30 MB
   * more.
   */
  readonly #inputs = new SharedSlots(INPUT_SLOTS, SLOT_BYTES);
  /**
   * The slots blocks are deflated into, lent with the block's data until it is written (`lent-bytes.ts`): the same
   * memory for every block, instead of new memory from each worker's reply.
   */
  readonly #outputs = new SharedSlots(OUTPUT_SLOTS, OUTPUT_SLOT_BYTES);
  /**
   * Counts the deflated data this thread takes in memory of its own (small blocks, a block finding no output slot
   * free, or one joined with pieces read back from an earlier archive), collecting garbage every 32 MiB of it.
   * Why: such data is garbage once written, and this thread's heap is small, so its collector let 70–100 MB of it
   * wait. When all blocks came that way, collecting every 32 MB lowered the peak of first backups through the
   * server by about 30 MB, for about 12 ms a collection (README "Performance").
   */
  readonly #tookIn = collectingEvery();
  /** One per worker, each hash on the worker its channel posts to. */
  readonly #hashChannels: HashChannels;

  constructor(count = availableParallelism(), options: DeflateWorkersOptions = {}) {
    this.#pool = new WorkerPool<DeflateRequest, DeflateReply>(count, options.script ?? WORKER_URL, {
      name: "A deflate worker",
      setup: () => this.#setup(),
      onNotice: (reply, index) => {
        if (!("type" in reply)) return;
        if (reply.type === "ready") return void (this.#deflaterUsed = reply.deflater);
        this.#hashChannels.handle(reply, index);
      },
      onFail: (error) => {
        this.#hashChannels.fail(error);
        this.#inputs.fail(error);
        this.#outputs.fail(error);
      },
    });
    this.#hashChannels = new HashChannels(this.#pool.count, (index, request) => this.#pool.post(index, request));
    this.#reuse = options.reuse;
    this.#deflater = options.deflater ?? "isa-l";
    // A line of indexes keeps one key: new pieces must be found with the key of the archive they may reuse.
    this.fingerprintKey = options.reuse?.fingerprintKey ?? (options.fingerprint ? newFingerprintKey() : undefined);
    this.#fingerprint = this.fingerprintKey !== undefined;
  }

  /**
   * A `DeflateBlock` on these workers. A block from `blockBuffer` is read where it is, and its slot is taken back
   * once the block is deflated; any other is copied, so the caller's buffer stays its own. Either must not change
   * until the promise settles (a reusable piece that fails its check is deflated from it after all). The block's
   * data may be lent (`lent-bytes.ts`): whoever writes or copies it gives it back.
   */
  readonly deflate: DeflateBlock = async (block, last, level) => {
    const own = this.#slotOf(block);
    try {
      const reply = await this.#send(block, last, level, this.#reuse !== undefined, own);
      let assembled = await this.#assemble(reply);
      // A reusable piece did not read back intact: this block is deflated whole instead.
      assembled ??= (await this.#assemble(await this.#send(block, last, level, false, own)))!;
      // Lent data is not garbage once written, so only data of its own counts towards a collection.
      if (!isLent(assembled.data)) this.#tookIn(assembled.data.byteLength);
      return assembled;
    } finally {
      if (own !== undefined) this.#inputs.release(own);
    }
  };

  /**
   * Memory for a block of `size` bytes that `deflate` reads in place: a slot of the workers' shared memory (one
   * copy the less), waiting for one if all are in use; a plain array for a block larger than a slot. A slot is
   * taken back when the block in it is deflated, so every one asked for must be deflated.
   */
  readonly blockBuffer: BlockBuffer = async (size) =>
    size <= SLOT_BYTES ? this.#inputs.view(await this.#inputs.acquire(), size) : new Uint8Array(size);

  /** The slot `block` starts, if it is a view of one from `blockBuffer`. */
  #slotOf(block: Uint8Array): number | undefined {
    if (block.buffer !== this.#inputs.buffer || block.byteOffset % SLOT_BYTES !== 0) return undefined;
    return block.byteOffset / SLOT_BYTES;
  }

  /**
   * The block's data, with reusable pieces read from the earlier archive; undefined if one is not intact. Lent
   * output is given back unless it is the data itself.
   */
  async #assemble({ output, pieces, fingerprints }: PiecedBlock): Promise<DeflatedBlock | undefined> {
    const reusing = pieces.some((piece) => "reuse" in piece);
    let reused: Awaited<ReturnType<ReusablePieceSource["read"]>> = [];
    try {
      if (reusing) reused = await this.#reuse!.read(pieces.flatMap((piece) => ("reuse" in piece ? [piece.reuse] : [])));
    } catch (error) {
      giveBack(output);
      throw error;
    }
    if (!reused) {
      giveBack(output);
      return undefined;
    }
    const parts: Uint8Array[] = [];
    const described: BlockPiece[] = [];
    let fresh = 0;
    let taken = 0;
    for (const [i, piece] of pieces.entries()) {
      const from = "fresh" in piece ? { data: output.subarray(fresh, (fresh += piece.fresh)) } : reused[taken++]!;
      parts.push(from.data);
      if (!fingerprints) continue;
      const known = "crc32" in from ? { crc32: from.crc32 } : {};
      const fingerprint = fingerprints.subarray(FINGERPRINT_BYTES * i, FINGERPRINT_BYTES * (i + 1));
      described.push({ inputLength: piece.inputLength, length: from.data.length, fingerprint, reused: "reuse" in piece, ...known });
    }
    // With nothing reused the data is `output` itself (lent or not); otherwise the parts are joined into new memory.
    const data = reusing ? concatBytes(parts) : output;
    if (data !== output) giveBack(output);
    return { data, ...(fingerprints ? { pieces: described } : {}) };
  }

  /**
   * Sends `block` to a worker: from its slot `own` as it is, else copied. The output comes back lent when the
   * worker wrote it into an output slot.
   */
  async #send(block: Uint8Array, last: boolean, level: number, reuse: boolean, own: number | undefined): Promise<PiecedBlock> {
    if (this.#pool.failure) throw this.#pool.failure;
    const oversized = block.length > SLOT_BYTES;
    const input = own ?? (oversized ? new SharedArrayBuffer(block.length) : await this.#inputs.acquire());
    const output = block.length >= LENT_OUTPUT_MIN_BYTES ? this.#outputs.tryAcquire() : undefined;
    let lent = false;
    try {
      // A copy: the caller's block stays its own.
      if (own === undefined) (typeof input === "number" ? this.#inputs.view(input, block.length) : new Uint8Array(input)).set(block);
      const reply = await this.#pool.request((id) => ({
        type: "deflate",
        id,
        input,
        length: block.length,
        ...(output === undefined ? {} : { output }),
        last,
        level,
        fingerprint: this.#fingerprint,
        reuse,
      }));
      if ("error" in reply) throw new Error(`A block failed to deflate: ${reply.error}`);
      const { output: data, pieces, fingerprints } = reply as Extract<DeflateReply, { pieces: unknown }>;
      if (typeof data !== "number") return { output: data, pieces, ...(fingerprints ? { fingerprints } : {}) };
      lent = true;
      return { output: lend(this.#outputs.view(output!, data), () => this.#outputs.release(output!)), pieces, ...(fingerprints ? { fingerprints } : {}) };
    } finally {
      if (output !== undefined && !lent) this.#outputs.release(output);
      // Once the worker has answered (or the workers are gone: nothing is sent after a failure). A slot of the
      // caller's goes back when its block is done (`deflate`).
      if (typeof input === "number" && own === undefined) this.#inputs.release(input);
    }
  }

  /** Stops hashing pieces for an index that will not be kept; pieces go on being hashed while they are reused. */
  stopFingerprinting(): void {
    if (!this.#reuse) this.#fingerprint = false;
  }

  /**
   * Hashing on the workers, beside their share of the blocks (a worker gets fewer of them while it hashes). Each
   * new hash goes to the next worker in turn: the archive's to the first, the first entry's (the database,
   * usually the largest) to the second. Why: when most pieces are reused there is little to deflate, and all the
   * hashes on one worker (1.3 GB on the bench's data) made it the slowest thread of a next backup.
   */
  get hashing(): Hashing {
    return this.#hashChannels.hashing;
  }

  /** The compressor the workers deflate pieces with, once one of them has said (before its first block's reply). */
  get deflaterUsed(): PieceDeflaterName | undefined {
    return this.#deflaterUsed;
  }

  /** Ends the workers; blocks still deflating fail. */
  close(): void {
    this.#pool.close("The deflate workers were closed.");
  }

  /** The message each worker gets first. */
  #setup(): DeflateRequest {
    const fingerprinting = this.fingerprintKey ? { fingerprintKey: this.fingerprintKey, ...(this.#reuse ? { lookup: this.#reuse.lookup } : {}) } : {};
    const slots = { inputs: this.#inputs.buffer, slotBytes: SLOT_BYTES, outputs: this.#outputs.buffer, outputSlotBytes: OUTPUT_SLOT_BYTES };
    return { type: "setup", deflater: this.#deflater, ...slots, ...fingerprinting };
  }
}
