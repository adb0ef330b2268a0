// A worker of bench/floors.ts: times one CPU operation (deflate, inflate, SHA-256) over the sample it is sent and
// answers { ms, outBytes }. Two run at once, one per core, as the server's two job threads do.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { openIsalDeflate, ISAL_LEVEL } from "../src/native/isal-deflate.ts";

const BLOCK = 1024 * 1024;
/** The server deflates 48 KiB pieces of 1 MiB blocks (`deflatePieces`). */
const PIECE = 48 * 1024;
let isal: ReturnType<typeof openIsalDeflate> | null = null;

declare const self: Worker;
self.onmessage = (event: MessageEvent<{ op: string; sample: Uint8Array }>) => {
  const { op, sample } = event.data;
  const blocks: Uint8Array[] = [];
  for (let at = 0; at < sample.length; at += BLOCK) blocks.push(sample.subarray(at, Math.min(sample.length, at + BLOCK)));
  let outBytes = 0;
  let run: () => void;
  if (op === "deflate-isal") {
    if (isal === null) isal = openIsalDeflate(ISAL_LEVEL);
    const deflate = isal;
    if (!deflate) return postMessage({ error: "ISA-L not available" });
    run = () => {
      for (const block of blocks)
        for (let at = 0; at < block.length; at += PIECE) outBytes += deflate(block.subarray(at, at + PIECE), at + PIECE >= block.length)!.length;
    };
  } else if (op === "deflate-zlib") {
    run = () => {
      for (const block of blocks) outBytes += deflateRawSync(block, { level: 1 }).length;
    };
  } else if (op === "inflate") {
    const deflated = blocks.map((b) => deflateRawSync(b, { level: 1 }));
    run = () => {
      for (const block of deflated) outBytes += inflateRawSync(block).length;
    };
  } else if (op === "sha256") {
    run = () => {
      const hasher = new Bun.CryptoHasher("sha256");
      for (const block of blocks) hasher.update(block);
      outBytes = hasher.digest().length;
    };
  } else return postMessage({ error: `unknown op ${op}` });
  const started = performance.now();
  run();
  postMessage({ ms: performance.now() - started, outBytes });
};
