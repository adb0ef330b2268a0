/**
 * The worker threads under the deflate and inflate workers: a pool answering requests by id, and the error
 * that says the threads themselves failed, not the work sent to them.
 */

/**
 * A failure of the worker threads themselves (one failed, ended, or the pool was closed), not of the work sent to
 * them: an archive being read is not to blame for it (`isFaultOutsideArchive`).
 */
export class WorkerPoolError extends Error {
  override name = "WorkerPoolError";
}

/**
 * Worker threads that answer requests by id, started on first use (each sent its setup message first), with the
 * least busy one taking the next request. A worker's error or end fails every request waiting and every later
 * one, so nothing waits for an answer that will not come. Used by the deflate and inflate workers.
 */
export class WorkerPool<Request, Reply extends object> {
  readonly #count: number;
  readonly #script: URL;
  readonly #options: WorkerPoolOptions<Reply>;
  readonly #workers: { worker: Worker; busy: number }[] = [];
  readonly #waiting = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  #nextId = 0;
  #failure: Error | undefined;

  constructor(count: number, script: URL, options: WorkerPoolOptions<Reply>) {
    this.#count = Math.max(1, count);
    this.#script = script;
    this.#options = options;
  }

  get count(): number {
    return this.#count;
  }

  /** The first failure, once there is one. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Sends `make(id)` to the least busy worker; resolves with its reply of that `id`. */
  request(make: (id: number) => Request): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const slot = this.#leastBusy();
    const id = this.#nextId++;
    slot.busy++;
    return new Promise<Reply>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      slot.worker.postMessage(make(id));
    }).finally(() => slot.busy--);
  }

  /** Posts a message that is not answered by id to the worker at `index`, starting it first if need be. */
  post(index: number, message: Request): void {
    this.#worker(index).worker.postMessage(message);
  }

  /** Fails every request waiting and every later one, once; the workers go on until `close`. */
  fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
    this.#options.onFail?.(error);
  }

  /** Ends the workers; requests still waiting fail with `message`. */
  close(message: string): void {
    this.fail(new WorkerPoolError(message));
    for (const { worker } of this.#workers.splice(0)) worker.terminate();
  }

  #leastBusy() {
    if (this.#workers.length < this.#count) return this.#worker(this.#workers.length);
    return this.#workers.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  /** The worker at `index`, started (with those before it) if it is not yet. */
  #worker(index: number) {
    while (this.#workers.length <= index) {
      const at = this.#workers.length;
      const worker = new Worker(this.#script);
      worker.onmessage = ({ data: reply }: MessageEvent<Reply>) => {
        if (!("id" in reply) || typeof reply.id !== "number") return this.#options.onNotice?.(reply, at);
        const waiting = this.#waiting.get(reply.id);
        this.#waiting.delete(reply.id);
        waiting?.resolve(reply);
      };
      const { name } = this.#options;
      worker.onerror = (event) => this.fail(new WorkerPoolError(`${name} failed: ${event.message}`));
      // A worker that ends without an error event (killed, out of memory) must not leave its requests waiting.
      worker.addEventListener("close", () => this.fail(new WorkerPoolError(`${name} ended.`)));
      worker.postMessage(this.#options.setup(at));
      this.#workers.push({ worker, busy: 0 });
    }
    return this.#workers[index]!;
  }
}

export interface WorkerPoolOptions<Reply> {
  /** Names a worker in errors: "A deflate worker" gives "A deflate worker ended." */
  name: string;
  /** The first message each worker gets. */
  setup: (index: number) => unknown;
  /** A reply without an id (the worker's own news), with the index of the worker it came from. */
  onNotice?: (reply: Reply, index: number) => void;
  /** Called once, with the first failure, after the requests waiting were rejected. */
  onFail?: (error: Error) => void;
}
