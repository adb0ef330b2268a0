// A thin shell: inflates the blocks it is sent (Bun only: ISA-L through bun:ffi where it loads, else node:zlib),
// each read from a slot of shared memory and written into another (`inflate-workers.ts`), and hashes the
// entries' bytes it is given (`worker-hashing.ts`).
import { inflateRawSync } from "node:zlib";
import { zlibBlockOptions } from "../src/archive/engine/block-inflate.ts";
import type { InflateReply, InflateRequest } from "../src/archive/engine/inflate-workers.ts";
import { hashRequestHandler } from "../src/archive/engine/worker-hashing.ts";
import { slotView } from "../src/archive/engine/shared-slots.ts";
import { openIsalInflate, type BlockInflate } from "../src/native/isal-inflate.ts";

declare const self: Worker;

/** node:zlib, for where ISA-L does not load: a copy more than ISA-L, at zlib's speed. */
const zlibInflate: BlockInflate = (input, output) => {
  try {
    const inflated = inflateRawSync(input, zlibBlockOptions(output.length));
    if (inflated.length !== output.length) return undefined;
    output.set(inflated);
    return inflated.length;
  } catch {
    return undefined;
  }
};

let inflate: BlockInflate = zlibInflate;
let slots: Extract<InflateRequest, { type: "setup" }> | undefined;
const hash = hashRequestHandler((reply) => self.postMessage(reply satisfies InflateReply));

self.onmessage = ({ data: request }: MessageEvent<InflateRequest>) => {
  if (request.type === "setup") {
    slots = request;
    const isal = request.inflater === "isa-l" ? openIsalInflate() : undefined;
    inflate = isal ?? zlibInflate;
    self.postMessage({ type: "ready", inflater: isal ? "isa-l" : "zlib" } satisfies InflateReply);
    return;
  }
  if (request.type !== "inflate") return hash(request);
  const { id, slot, length, size } = request;
  try {
    const input = slotView(slots!.inputs, slots!.inputBytes, slot, length);
    const output = slotView(slots!.outputs, slots!.outputBytes, slot, size);
    const ok = inflate(input, output) !== undefined;
    self.postMessage({ id, ok } satisfies InflateReply);
  } catch (error) {
    self.postMessage({ id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies InflateReply);
  }
};
