/**
 * Entries' WinZip AES ciphers on a thread of their own (`AesWorker`, `workers/aes.worker.ts`), and the messages
 * it exchanges with it; `aesRequestHandler` is the thread's side.
 */
import { AesCipherCore, type AesDirection, type EntryCipher, type OpenEntryCipher } from "../zip/index.ts";
import { SharedSlots, slotView } from "./shared-slots.ts";
import { WorkerPool } from "./worker-pool.ts";

export type AesRequest =
  | { type: "setup"; slots: SharedArrayBuffer; slotBytes: number }
  /** A new entry's cipher, numbered `stream`; no reply. */
  | { type: "open"; stream: number; aesKey: Uint8Array; hmacKey: Uint8Array; direction: AesDirection }
  /** Apply stream `stream`'s cipher to the first `length` bytes of `slot`, in place. */
  | { type: "apply"; id: number; stream: number; slot: number; length: number }
  /** The stream's authentication code; the stream ends. */
  | { type: "final"; id: number; stream: number };

export type AesReply = { id: number; error?: string; code?: Uint8Array };

const WORKER_URL = new URL("../../../workers/aes.worker.ts", import.meta.url);

/** Bytes sent at a time: one message per MiB keeps the messaging cost small beside the work. */
const SLOT_BYTES = 1024 * 1024;
/** Pieces on the thread or waiting for it at once: a restore's 4 MiB read, or a backup's pending blocks, and one more. */
const SLOTS = 6;

/**
 * Entries' ciphers (`OpenEntryCipher`) on one worker thread, started on first use. Each piece is copied into a
 * slot of shared memory, encrypted or decrypted there in place, and copied back; the thread takes its messages
 * in order, so pieces sent in order are applied in order, and a cipher's next piece is sent without waiting for
 * the one before it to come back.
 *
 * Why: the counter mode and the HMAC run at about 0.7–1 GB/s together on one core (`AesCipherCore`), and on the
 * job's thread, which also reads the database's pages, orders the output and writes it, they ran in line with
 * that work; here they cost it two copies and run beside it. The gain is modest where both cores are busy
 * anyway (a backup's deflating, a restore's inflating): in alternated runs of the bench's default shape, 2–4%
 * of an encrypted job's time (docs/operations.md "Encrypted backups").
 */
export class AesWorker {
  readonly #pool: WorkerPool<AesRequest, AesReply>;
  readonly #slots = new SharedSlots(SLOTS, SLOT_BYTES);
  #nextStream = 0;
  /** Settles once the last piece asked for is sent: the next waits for it, so they go in the order asked. */
  #sent: Promise<unknown> = Promise.resolve();

  constructor(script: URL = WORKER_URL) {
    this.#pool = new WorkerPool<AesRequest, AesReply>(1, script, {
      name: "The AES worker",
      setup: () => ({ type: "setup", slots: this.#slots.buffer, slotBytes: SLOT_BYTES }),
      onFail: (error) => this.#slots.fail(error),
    });
  }

  readonly open: OpenEntryCipher = (keys, direction): EntryCipher => {
    const stream = this.#nextStream++;
    if (!this.#pool.failure) this.#pool.post(0, { type: "open", stream, aesKey: keys.aesKey, hmacKey: keys.hmacKey, direction });
    return {
      update: (data) => this.#update(stream, data),
      final: async () => {
        const reply = await this.#inTurn(async () => ({ reply: this.#pool.request((id) => ({ type: "final", id, stream })) }));
        if (reply.error !== undefined || !reply.code) throw new Error(`A cipher failed: ${reply.error}`);
        return reply.code;
      },
    };
  };

  /** Ends the thread; pieces still on it fail. */
  close(): void {
    this.#pool.close("The AES worker was closed.");
  }

  async #update(stream: number, data: Uint8Array): Promise<void> {
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < data.length; at += SLOT_BYTES) pieces.push(this.#apply(stream, data.subarray(at, at + SLOT_BYTES)));
    await Promise.all(pieces);
  }

  async #apply(stream: number, piece: Uint8Array): Promise<void> {
    let slot: number | undefined;
    const reply = this.#inTurn(async () => {
      slot = await this.#slots.acquire();
      this.#slots.view(slot, piece.length).set(piece);
      return { reply: this.#pool.request((id) => ({ type: "apply", id, stream, slot: slot!, length: piece.length })) };
    });
    try {
      const { error } = await reply;
      if (error !== undefined) throw new Error(`A cipher failed: ${error}`);
      piece.set(this.#slots.view(slot!, piece.length));
    } finally {
      if (slot !== undefined) this.#slots.release(slot);
    }
  }

  /**
   * Runs `send` once everything asked for before it is sent, and resolves with the reply it waits for: only the
   * sending is in turn, not the waiting for the reply (which is why `send` wraps it: a promise returned bare
   * would be waited for).
   */
  #inTurn(send: () => Promise<{ reply: Promise<AesReply> }>): Promise<AesReply> {
    const sent = this.#sent.then(send);
    this.#sent = sent.catch(() => {});
    return sent.then(({ reply }) => reply);
  }
}

/** The thread's side: one cipher per stream, applied in place in the slots. */
export function aesRequestHandler(reply: (message: AesReply) => void): (request: AesRequest) => void {
  const ciphers = new Map<number, AesCipherCore>();
  let slots: { buffer: SharedArrayBuffer; slotBytes: number } | undefined;
  return (request) => {
    if (request.type === "setup") {
      slots = { buffer: request.slots, slotBytes: request.slotBytes };
    } else if (request.type === "open") {
      ciphers.set(request.stream, new AesCipherCore(request, request.direction));
    } else {
      try {
        const cipher = ciphers.get(request.stream);
        if (!cipher) throw new Error(`No cipher ${request.stream}.`);
        if (request.type === "final") {
          ciphers.delete(request.stream);
          reply({ id: request.id, code: cipher.code() });
        } else {
          if (!slots) throw new Error("No slots to apply the cipher in.");
          cipher.apply(slotView(slots.buffer, slots.slotBytes, request.slot, request.length));
          reply({ id: request.id });
        }
      } catch (error) {
        reply({ id: request.id, error: error instanceof Error ? error.message : String(error) });
      }
    }
  };
}
