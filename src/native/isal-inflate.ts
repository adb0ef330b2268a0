/**
 * Intel's ISA-L inflate (`libisal`, Debian's `libisal2`, the library backups deflate with) through `bun:ffi`, for
 * the inflate workers of a restore or verify: about 1.5× node:zlib's speed on the bench's blocks (500 against
 * 330 MB/s), each block inflated straight into memory the caller gives. Bun only, and only where the library
 * loads and passes a round trip when it opens; the workers inflate with node:zlib otherwise
 * (`inflate.worker.ts`). Outside `src/archive`, which must also run on Deno.
 */
import { FFIType, ptr } from "bun:ffi";
import { constants, deflateRawSync } from "node:zlib";
import { openIsalLibrary, roundTripText } from "./isal-library.ts";

/**
 * Inflates one block of raw deflate data into `output`, which must be exactly as long as the block inflates to:
 * the number of bytes written, or undefined when the data is not valid deflate or inflates to another length. A
 * block may end on a flush (an empty stored block) rather than a final block, as every block of an archive's
 * large entries but the last does (`deflate-block.ts`).
 */
export type BlockInflate = (input: Uint8Array, output: Uint8Array) => number | undefined;

/**
 * `struct inflate_state` (igzip_lib.h, ISA-L 2.x, 64-bit): the public fields come first. Its size is 87,368 bytes
 * in ISA-L 2.30; room is kept for later versions. The round trip at load catches a layout that does not match.
 */
const STATE_BYTES = 128 * 1024;
const FIELD = { nextOut: 0, availOut: 8, totalOut: 12, nextIn: 16, availIn: 32 };
/** The stream ended with its final block. */
const DECOMP_OK = 0;
/** Every input byte was used without meeting a final block: a block that ends on a flush. */
const END_INPUT = 1;

/** A `BlockInflate` on ISA-L, or undefined where the library cannot be loaded or fails its round trip. One per thread. */
export function openIsalInflate(): BlockInflate | undefined {
  const lib = openIsalLibrary({
    isal_inflate_init: { args: [FFIType.ptr], returns: FFIType.void },
    isal_inflate_stateless: { args: [FFIType.ptr], returns: FFIType.i32 },
  });
  if (!lib) return undefined;
  const state = new Uint8Array(STATE_BYTES);
  const fields = new DataView(state.buffer);
  // Where an empty output points (an entry's last block is empty when its size is a multiple of the block size):
  // `ptr` refuses an empty view.
  const nowhere = new Uint8Array(1);
  const inflate: BlockInflate = (input, output) => {
    if (input.length === 0) return undefined; // no deflate stream is empty
    lib.symbols.isal_inflate_init(state); // a raw deflate stream, no checksum, no window from a call before
    fields.setBigUint64(FIELD.nextIn, BigInt(ptr(input)), true);
    fields.setUint32(FIELD.availIn, input.length, true);
    fields.setBigUint64(FIELD.nextOut, BigInt(ptr(output.length > 0 ? output : nowhere)), true);
    fields.setUint32(FIELD.availOut, output.length, true);
    const result = lib.symbols.isal_inflate_stateless(state);
    if (result !== DECOMP_OK && result !== END_INPUT) return undefined;
    const written = fields.getUint32(FIELD.totalOut, true);
    return written === output.length ? written : undefined;
  };
  return roundTrips(inflate) ? inflate : undefined;
}

/** Whether a block ending on a flush and one ending the stream, both made by zlib, inflate back to their input. */
function roundTrips(inflate: BlockInflate): boolean {
  const text = roundTripText();
  const flushed = deflateRawSync(text, { finishFlush: constants.Z_FULL_FLUSH });
  const final = deflateRawSync(text);
  const output = new Uint8Array(text.length);
  for (const block of [flushed, final]) {
    output.fill(0);
    if (inflate(block, output) !== text.length || !Buffer.from(output).equals(Buffer.from(text))) return false;
  }
  return inflate(deflateRawSync(new Uint8Array(0)), new Uint8Array(0)) === 0;
}
