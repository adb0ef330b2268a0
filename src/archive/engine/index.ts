/**
 * The engine's face: where an archive's blocks deflate and inflate in parallel (worker threads with ISA-L or
 * libdeflate, or node:zlib's thread pool), with the pieces fingerprinted and the archive hashed on the way.
 * Code outside src/archive/engine imports it from here.
 */
export * from "./aes-worker.ts";
export * from "./block-inflate.ts";
export * from "./concat-bytes.ts";
export * from "./deflate-block.ts";
export * from "./deflate-splice.ts";
export * from "./deflate-workers.ts";
export * from "./engine-choice.ts";
export * from "./inflate-workers.ts";
export * from "./parallel-deflate-stream.ts";
export * from "./piece-fingerprint.ts";
export * from "./piece-ring.ts";
export * from "./read-ahead.ts";
export * from "./read-buffers.ts";
export * from "./shared-slots.ts";
export * from "./stored-pieces.ts";
export * from "./worker-hashing.ts";
export * from "./worker-pool.ts";
