import { availableParallelism } from "node:os";
import type { DeflateBlock } from "./deflate-block.ts";

export interface DeflateRequest {
  id: number;
  /** The block's own bytes, transferred. */
  block: ArrayBuffer;
  last: boolean;
  level: number;
}

export type DeflateReply = { id: number; output: Uint8Array } | { id: number; error: string };

const WORKER_URL = new URL("../../workers/deflate.worker.ts", import.meta.url);

interface Waiting {
  resolve: (output: Uint8Array) => void;
  reject: (error: Error) => void;
}

/**
 * Worker threads that deflate blocks with libdeflate (`deflate.worker.ts`), one per core, started on first use.
 *
 * Why workers: libdeflate is reached through `Bun.deflateSync`, which runs on the calling thread; node:zlib's
 * async calls use the thread pool, but zlib is slower (PERF-NOTES). Threads created by a job thread share its
 * lowered priority, like the pool (`thread-priority.ts`).
 */
export class DeflateWorkers {
  readonly #count: number;
  readonly #script: URL;
  readonly #workers: { worker: Worker; busy: number }[] = [];
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 0;
  #failure: Error | undefined;

  /** `script` is the worker's module: `deflate.worker.ts` but in tests of what happens when a worker dies. */
  constructor(count = availableParallelism(), script = WORKER_URL) {
    this.#count = Math.max(1, count);
    this.#script = script;
  }

  /** A `DeflateBlock` on these workers. The block is copied, so the caller's buffer stays its own. */
  readonly deflate: DeflateBlock = (block, last, level) => {
    if (this.#failure) return Promise.reject(this.#failure);
    const slot = this.#leastBusy();
    const id = this.#nextId++;
    const own = block.slice();
    slot.busy++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      slot.worker.postMessage({ id, block: own.buffer, last, level } satisfies DeflateRequest, [own.buffer]);
    }).finally(() => slot.busy--);
  };

  /** Ends the workers; blocks still deflating fail. */
  close(): void {
    this.#fail(new Error("The deflate workers were closed."));
    for (const { worker } of this.#workers.splice(0)) worker.terminate();
  }

  #leastBusy() {
    if (this.#workers.length < this.#count) {
      const worker = new Worker(this.#script);
      worker.onmessage = ({ data: reply }: MessageEvent<DeflateReply>) => {
        const waiting = this.#waiting.get(reply.id);
        this.#waiting.delete(reply.id);
        if ("error" in reply) waiting?.reject(new Error(`A block failed to deflate: ${reply.error}`));
        else waiting?.resolve(reply.output);
      };
      worker.onerror = (event) => this.#fail(new Error(`A deflate worker failed: ${event.message}`));
      // A worker that ends without an error event (killed, out of memory) must not leave its blocks waiting.
      worker.addEventListener("close", () => this.#fail(new Error("A deflate worker ended.")));
      const slot = { worker, busy: 0 };
      this.#workers.push(slot);
      return slot;
    }
    return this.#workers.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
  }
}
