// A stand-in for the deflate worker's hashing that answers every digest with its own thread's id instead of a
// hash: which worker a hash ran on, for tests of how hashes are spread.
import { threadId } from "node:worker_threads";
import type { DeflateReply, DeflateRequest } from "../../src/archive/engine/index.ts";

declare const self: Worker;
self.onmessage = ({ data: request }: MessageEvent<DeflateRequest>) => {
  if (request.type === "hash-update") self.postMessage({ type: "hash-ack", slot: request.slot } satisfies DeflateReply);
  else if (request.type === "hash-digest") self.postMessage({ type: "hash-digest", stream: request.stream, hex: `thread ${threadId}` } satisfies DeflateReply);
};
