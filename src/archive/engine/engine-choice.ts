/**
 * The engine choice: where an archive's blocks deflate and inflate, and where it is hashed. Worker threads with
 * ISA-L or libdeflate under Bun, node:zlib's thread pool and this thread elsewhere. With CRC-32
 * (`zip/crc32.ts`), the one place the archive core uses a runtime's own fast paths; everything else in
 * src/archive sticks to web-standard APIs and the `node:` built-ins that Bun and Deno both provide.
 */

import { zlibBlockInflater, type BlockInflater } from "./block-inflate.ts";
import { type BlockBuffer, type DeflateBlock, zlibDeflateBlock } from "./deflate-block.ts";
import { DeflateWorkers, type DeflateWorkersOptions } from "./deflate-workers.ts";
import { inlineHashing, type Hashing } from "./worker-hashing.ts";
import { InflateWorkers } from "./inflate-workers.ts";
import { AesWorker } from "./aes-worker.ts";
import { inlineEntryCiphers, type OpenEntryCipher } from "../zip/index.ts";

const bunDeflateSync = (globalThis as { Bun?: { deflateSync?: unknown } }).Bun?.deflateSync;

/**
 * Where to deflate an archive's blocks: ISA-L or libdeflate on worker threads under Bun (faster than zlib at
 * about the same size, `deflate-workers.ts`), node:zlib's thread pool elsewhere. `close` ends the workers.
 * Only the workers fingerprint blocks and reuse an earlier archive's (`block-reuse.ts`): zlib's blocks come
 * back without a fingerprint, so no index is made of them; `fingerprintKey` is the key the workers use.
 * `hashing` is where the archive and its entries are hashed: on the workers, or this thread.
 */
export function openBlockDeflater(options: DeflateWorkersOptions = {}): {
  deflate: DeflateBlock;
  /** Memory to fill blocks in that `deflate` reads in place (`DeflateWorkers.blockBuffer`), where it has any. */
  blockBuffer?: BlockBuffer;
  hashing: Hashing;
  fingerprintKey?: Uint8Array;
  /** What deflated the blocks at the fast levels, for logs: known once a block has been deflated. */
  deflaterUsed(): string | undefined;
  stopFingerprinting(): void;
  close(): void;
} {
  if (typeof bunDeflateSync !== "function") return { deflate: zlibDeflateBlock, hashing: inlineHashing, deflaterUsed: () => "zlib", stopFingerprinting() {}, close() {} };
  const workers = new DeflateWorkers(undefined, options);
  return {
    deflate: workers.deflate,
    blockBuffer: workers.blockBuffer,
    hashing: workers.hashing,
    deflaterUsed: () => workers.deflaterUsed,
    ...(workers.fingerprintKey ? { fingerprintKey: workers.fingerprintKey } : {}),
    stopFingerprinting: () => workers.stopFingerprinting(),
    close: () => workers.close(),
  };
}

/**
 * Where an archive's blocks inflate (`inflateBlocks`): worker threads under Bun, with ISA-L where it loads
 * (`inflate-workers.ts`), node:zlib's thread pool elsewhere. `hashing` is where the entries read are hashed: on
 * the same workers, or this thread. `close` ends the workers.
 */
export function openBlockInflater(): BlockInflater & {
  /** What inflated the blocks, for logs: known once a worker has started. */
  readonly inflaterUsed: string | undefined;
  readonly hashing: Hashing;
  close(): void;
} {
  if (typeof bunDeflateSync !== "function") return { ...zlibBlockInflater, inflaterUsed: "zlib", hashing: inlineHashing, close() {} };
  return new InflateWorkers();
}

/**
 * Where encrypted entries' ciphers run (`OpenEntryCipher`): a worker thread of their own under Bun, started on
 * first use (`aes-worker.ts`), this thread elsewhere. `close` ends the thread.
 */
export function openEntryCiphers(): { open: OpenEntryCipher; close(): void } {
  if (typeof bunDeflateSync !== "function") return { open: inlineEntryCiphers, close() {} };
  const worker = new AesWorker();
  return { open: worker.open, close: () => worker.close() };
}
