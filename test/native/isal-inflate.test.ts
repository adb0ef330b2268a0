import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { constants, deflateRawSync } from "node:zlib";
import { deflatePieces, flushedPieces } from "../../src/archive/engine/index.ts";
import { ISAL_LEVEL, openIsalDeflate } from "../../src/native/isal-deflate.ts";
import { openIsalInflate } from "../../src/native/isal-inflate.ts";
import { isalRequired } from "../support/isal.ts";
import { jsonRows } from "../support/sample-data.ts";

const MiB = 1024 * 1024;
const inflate = openIsalInflate();
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

test.if(isalRequired)("ISA-L's inflate loads and passes its round trip (required where BACKSTREAM_REQUIRE_ISAL=1, as in CI)", () => {
  expect(inflate).toBeDefined();
});

describe.skipIf(!inflate)("ISA-L inflate", () => {
  test("a block ending on a flush and one ending the stream inflate exactly into the memory given", () => {
    const input = jsonRows(MiB);
    for (const block of [deflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH }), deflateRawSync(input, { level: 1 })]) {
      const output = new Uint8Array(MiB);
      expect(inflate!(block, output)).toBe(MiB);
      expect(same(output, input)).toBe(true);
    }
  });

  test("the blocks backups write (ISA-L's pieces, incompressible ones stored) inflate back", () => {
    const deflater = flushedPieces(openIsalDeflate(ISAL_LEVEL)!);
    for (const input of [jsonRows(MiB, 3), new Uint8Array(randomBytes(MiB))]) {
      const block = new Uint8Array(deflatePieces(input, false, deflater).output); // a copy: the output is ISA-L's ring
      const output = new Uint8Array(MiB);
      expect(inflate!(block, output)).toBe(MiB);
      expect(same(output, input)).toBe(true);
    }
  });

  test("a block that inflates to more or less than the memory given is refused, never written past it", () => {
    const input = jsonRows(64 * 1024);
    const block = deflateRawSync(input);
    const room = new Uint8Array(input.length + 16).fill(0xee);
    expect(inflate!(block, room.subarray(0, input.length - 1))).toBeUndefined();
    expect(room[input.length - 1]).toBe(0xee); // the byte after the short output is untouched
    expect(inflate!(block, new Uint8Array(input.length + 1))).toBeUndefined();
  });

  test("corrupt, truncated and empty data is refused; an empty final block gives an empty output", () => {
    const input = jsonRows(256 * 1024);
    const block = deflateRawSync(input);
    const output = new Uint8Array(input.length);
    expect(inflate!(block.subarray(0, block.length >> 1), output)).toBeUndefined();
    expect(inflate!(new Uint8Array([0xff, 0xff, 0xff, 0xff]), output)).toBeUndefined(); // reserved block type
    const flipped = new Uint8Array(block);
    flipped[100]! ^= 0x5a;
    expect(inflate!(flipped, output) === undefined || !same(output, input)).toBe(true);
    expect(inflate!(new Uint8Array(0), new Uint8Array(0))).toBeUndefined();
    expect(inflate!(deflateRawSync(new Uint8Array(0)), new Uint8Array(0))).toBe(0);
  });
});
