import { describe, expect, test } from "bun:test";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { spliceInPlace } from "../../../src/archive/engine/index.ts";
import { jsonRows } from "../../support/sample-data.ts";

const libdeflate = (data: Uint8Array) => Bun.deflateSync(data as Uint8Array<ArrayBuffer>, { level: 1, library: "libdeflate" });

/** `pieces` deflated by libdeflate one by one, all but the last spliced, concatenated; and the tails used. */
function spliceAll(pieces: Uint8Array[]) {
  const parts: Uint8Array[] = [];
  const tails: number[] = [];
  pieces.forEach((piece, i) => {
    const stream = libdeflate(piece);
    if (i === pieces.length - 1) return parts.push(stream);
    const tail = spliceInPlace(stream);
    if (!tail) throw new Error(`piece ${i} was not spliceable`);
    tails.push(tail.length);
    parts.push(stream, Uint8Array.from(tail));
  });
  return { joined: Buffer.concat(parts), tails };
}

describe("spliceInPlace", () => {
  test("one-block streams spliced end to end inflate to their inputs in order, whatever padding each ended with", () => {
    // Pieces of many sizes end at every bit position of their last byte; both kinds of tail must be right.
    const rows = jsonRows(3_000_000);
    const pieces: Uint8Array[] = [];
    for (let at = 0, size = 20_000; at < rows.length; at += size, size = 20_000 + ((size * 7919) % 28_000)) pieces.push(rows.subarray(at, at + size));
    const { joined, tails } = spliceAll(pieces);
    expect(Buffer.from(inflateRawSync(joined)).equals(Buffer.from(rows))).toBe(true);
    expect(new Set(tails)).toEqual(new Set([4, 5])); // a stored block's header in the padding, and in a byte of its own
  });

  test("stored blocks (incompressible bytes) splice too, and a piece inflates on its own up to its tail", () => {
    const noise = crypto.getRandomValues(new Uint8Array(40_000));
    const text = jsonRows(40_000);
    const stored = libdeflate(noise);
    expect((stored[0]! >> 1) & 3).toBe(0); // libdeflate stored it
    const { joined } = spliceAll([noise, text, noise]);
    expect(Buffer.from(inflateRawSync(joined)).equals(Buffer.concat([noise, text, noise]))).toBe(true);
    const [first] = [libdeflate(text)];
    const tail = spliceInPlace(first!)!;
    const alone = inflateRawSync(Buffer.concat([first!, Uint8Array.from(tail)]), { finishFlush: constants.Z_SYNC_FLUSH });
    expect(Buffer.from(alone).equals(Buffer.from(text))).toBe(true);
  });

  test("refuses, leaving the stream as it was, what it cannot splice for sure", () => {
    const check = (stream: Uint8Array) => {
      const before = Buffer.from(stream);
      expect(spliceInPlace(stream)).toBeUndefined();
      expect(Buffer.from(stream).equals(before)).toBe(true);
    };
    check(libdeflate(jsonRows(600_000))); // several blocks: the first is not the final one
    const fixed = libdeflate(new TextEncoder().encode("the quick brown fox jumps over the lazy dog the quick brown fox"));
    expect((fixed[0]! >> 1) & 3).toBe(1);
    check(fixed); // fixed codes: the end-of-block code is zeros, like the padding
    check(deflateRawSync(jsonRows(50_000), { finishFlush: constants.Z_SYNC_FLUSH })); // already open-ended
    check(new Uint8Array(0));
  });

  test("garbage that claims to be a final dynamic block is refused or spliced, never thrown on", () => {
    for (let i = 0; i < 500; i++) {
      const junk = crypto.getRandomValues(new Uint8Array(1 + (i % 300)));
      junk[0] = (junk[0]! & ~0b111) | 0b101; // final, dynamic
      expect(() => spliceInPlace(junk)).not.toThrow();
    }
  });
});
