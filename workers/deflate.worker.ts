// A thin shell: deflates the blocks it is sent (Bun only: libdeflate is reached through Bun.deflateSync).
import { deflateBlockSync } from "../src/archive/deflate-block.ts";
import type { DeflateReply, DeflateRequest } from "../src/archive/deflate-workers.ts";

declare const self: Worker;

const libdeflate = (piece: Uint8Array) => Bun.deflateSync(piece as Uint8Array<ArrayBuffer>, { level: 1, library: "libdeflate" });

self.onmessage = ({ data: request }: MessageEvent<DeflateRequest>) => {
  try {
    const output = deflateBlockSync(new Uint8Array(request.block), request.last, request.level, libdeflate);
    // A copy when the output is a view into a larger buffer, so that only its own bytes are transferred.
    const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength ? output : output.slice();
    self.postMessage({ id: request.id, output: own } satisfies DeflateReply, [own.buffer]);
  } catch (error) {
    self.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) } satisfies DeflateReply);
  }
};
