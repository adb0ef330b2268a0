// A thin shell: deflates the blocks it is sent (Bun only: ISA-L through bun:ffi where it loads, else libdeflate
// through Bun.deflateSync; pieces that look incompressible stored, `stored-pieces.ts`), fingerprinting their
// pieces and skipping those an earlier archive already holds deflated smaller (`block-reuse.ts`,
// `findReusable`), and hashes the streams of the archive and its entries it is given (`worker-hashing.ts`).
// Blocks and hash batches are read where they lie, in shared memory (`shared-slots.ts`).
import { deflateBlockSync, flushedPieces, libdeflatePieces, type PieceDeflater, type PieceOptions } from "../src/archive/engine/deflate-block.ts";
import type { DeflateReply, DeflateRequest, PieceDeflaterName } from "../src/archive/engine/deflate-workers.ts";
import { hashRequestHandler } from "../src/archive/engine/worker-hashing.ts";
import { ISAL_LEVEL, openIsalDeflate } from "../src/native/isal-deflate.ts";
import { pieceFingerprinter } from "../src/archive/engine/piece-fingerprint.ts";
import { findReusable } from "../src/archive/reuse/piece-records.ts";
import { slotView } from "../src/archive/engine/shared-slots.ts";
import { storingIncompressible } from "../src/archive/engine/stored-pieces.ts";

declare const self: Worker;

const libdeflate = libdeflatePieces((piece) => Bun.deflateSync(piece as Uint8Array<ArrayBuffer>, { level: 1, library: "libdeflate" }));
let pieceDeflater: PieceDeflater = storingIncompressible(libdeflate);
let fingerprint: ((piece: Uint8Array) => Uint8Array) | undefined;
let lookup: Uint8Array | undefined;
let inputs: { buffer: SharedArrayBuffer; slotBytes: number } | undefined;
let outputs: { buffer: SharedArrayBuffer; slotBytes: number } | undefined;
const hash = hashRequestHandler((reply) => self.postMessage(reply satisfies DeflateReply));

self.onmessage = ({ data: request }: MessageEvent<DeflateRequest>) => {
  if (request.type === "setup") {
    const isal = request.deflater === "isa-l" ? openIsalDeflate(ISAL_LEVEL) : undefined;
    pieceDeflater = storingIncompressible(isal ? flushedPieces(isal) : libdeflate);
    if (request.fingerprintKey) fingerprint = pieceFingerprinter(request.fingerprintKey);
    lookup = request.lookup;
    inputs = { buffer: request.inputs, slotBytes: request.slotBytes };
    outputs = { buffer: request.outputs, slotBytes: request.outputSlotBytes };
    const deflater: PieceDeflaterName = isal ? "isa-l" : "libdeflate";
    self.postMessage({ type: "ready", deflater } satisfies DeflateReply);
    return;
  }
  if (request.type !== "deflate") return hash(request);
  const { id, input, length } = request;
  try {
    const block = typeof input === "number" ? slotView(inputs!.buffer, inputs!.slotBytes, input, length) : new Uint8Array(input, 0, length);
    const reusable = request.reuse && lookup ? { reusable: (key: Uint8Array, last: boolean, inputLength: number) => findReusable(lookup!, key, last, inputLength) } : {};
    // Written into the slot the caller lends the data on (`lent-bytes.ts`) where it fits: memory used before, where
    // a copy of its own would be faulted in afresh on both threads.
    const into = request.output === undefined ? {} : { into: slotView(outputs!.buffer, outputs!.slotBytes, request.output, outputs!.slotBytes) };
    const options: PieceOptions = { ...(request.fingerprint && fingerprint ? { fingerprint, ...reusable } : {}), ...into };
    const { output, pieces, fingerprints } = deflateBlockSync(block, request.last, request.level, pieceDeflater, options);
    const fingerprinted = fingerprints ? { fingerprints } : {};
    const transferFingerprints = fingerprints ? [fingerprints.buffer as ArrayBuffer] : [];
    if (output.buffer === outputs?.buffer) {
      self.postMessage({ id, output: output.length, pieces, ...fingerprinted } satisfies DeflateReply, transferFingerprints);
      return;
    }
    // A copy when the output is a view into a larger buffer (ISA-L's output ring, reused by the next block, or
    // shared memory), so only its own bytes go: a real copy, since a `Buffer`'s `slice` (zlib's output is one)
    // would share the larger buffer.
    const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength && !(output.buffer instanceof SharedArrayBuffer) ? output : new Uint8Array(output);
    self.postMessage({ id, output: own, pieces, ...fingerprinted } satisfies DeflateReply, [own.buffer as ArrayBuffer, ...transferFingerprints]);
  } catch (error) {
    self.postMessage({ id, error: error instanceof Error ? error.message : String(error) } satisfies DeflateReply);
  }
};
