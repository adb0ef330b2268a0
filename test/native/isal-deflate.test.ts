import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { constants, inflateRawSync } from "node:zlib";
import { deflatePieces, endsOpen, flushedPieces } from "../../src/archive/engine/index.ts";
import { ISAL_LEVEL, openIsalDeflate } from "../../src/native/isal-deflate.ts";
import { isalRequired } from "../support/isal.ts";
import { jsonRows } from "../support/sample-data.ts";

const MiB = 1024 * 1024;
const isal = openIsalDeflate(ISAL_LEVEL);
const inflatesTo = (data: Uint8Array, expected: Uint8Array, finishFlush?: number) =>
  Buffer.from(inflateRawSync(data, finishFlush === undefined ? {} : { finishFlush })).equals(Buffer.from(expected));

test.if(isalRequired)("ISA-L loads and passes its round trip (required where BACKSTREAM_REQUIRE_ISAL=1, as in CI)", () => {
  expect(isal).toBeDefined();
});

describe.skipIf(!isal)("ISA-L pieces", () => {
  test("open pieces end with a full flush and inflate alone; with a final one they make one stream", () => {
    const input = jsonRows(200_000);
    const open = isal!(input.subarray(0, 120_000), false)!;
    const final = isal!(input.subarray(120_000), true)!;
    expect(Buffer.from(open.subarray(-4))).toEqual(Buffer.from([0, 0, 0xff, 0xff]));
    expect(inflatesTo(open, input.subarray(0, 120_000), constants.Z_SYNC_FLUSH)).toBe(true);
    expect(inflatesTo(Buffer.concat([open, final]), input)).toBe(true);
    expect(open.length + final.length).toBeLessThan(input.length / 3);
  });

  test("each piece starts without a window: the same input gives the same bytes wherever it lies", () => {
    const input = jsonRows(96 * 1024, 5);
    const alone = isal!(input.subarray(48 * 1024), false)!;
    isal!(input.subarray(0, 48 * 1024), false); // a call before must leave nothing behind
    expect(Buffer.from(isal!(input.subarray(48 * 1024), false)!).equals(Buffer.from(alone))).toBe(true);
  });

  test("incompressible and empty pieces: stored blocks within the output's room, an empty final block", () => {
    const random = new Uint8Array(randomBytes(MiB));
    const open = isal!(random, false)!;
    expect(open.length).toBeLessThan(random.length + 200);
    const empty = isal!(new Uint8Array(0), true)!;
    expect(inflatesTo(Buffer.concat([open, empty]), random)).toBe(true);
  });

  test("blocks of pieces concatenate into one stream, and each open block inflates alone", () => {
    const input = jsonRows(2 * MiB + 777, 9);
    const blocks = [input.subarray(0, MiB), input.subarray(MiB, 2 * MiB), input.subarray(2 * MiB)];
    // Copied as they come: a block's output may be a view of ISA-L's output ring, reused by the blocks after it.
    const out = blocks.map((block, i) => deflatePieces(block, i === blocks.length - 1, flushedPieces(isal!)).output.slice());
    expect(inflatesTo(Buffer.concat(out), input)).toBe(true);
    expect(inflatesTo(out[1]!, blocks[1]!, constants.Z_SYNC_FLUSH)).toBe(true);
  });
  test("every open piece ISA-L makes of text, zeros, random bytes or nothing passes", () => {
    for (const piece of [jsonRows(48 * 1024, 2), new Uint8Array(48 * 1024), new Uint8Array(randomBytes(48 * 1024)), new Uint8Array(0)]) {
      const out = isal!(piece, false);
      expect(out).toBeDefined();
      expect(endsOpen(out!, piece.length)).toBe(true);
    }
  });
});
