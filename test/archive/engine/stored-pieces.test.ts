import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { constants, inflateRawSync } from "node:zlib";
import fc from "fast-check";
import { deflatePieces, endsOpen, libdeflatePieces, looksIncompressible, sampleEntropy, storedPiece, storingIncompressible, type PieceDeflater } from "../../../src/archive/engine/index.ts";
import { jsonRows } from "../../support/sample-data.ts";

const libdeflate = libdeflatePieces((data) => Bun.deflateSync(data as Uint8Array<ArrayBuffer>, { level: 1, library: "libdeflate" }));
const KiB = 1024;

/** `deflater`, counting the pieces it is asked to deflate. */
function counting(deflater: PieceDeflater): { deflater: PieceDeflater; calls: () => number } {
  let calls = 0;
  return {
    deflater: (piece, final) => {
      calls++;
      return deflater(piece, final);
    },
    calls: () => calls,
  };
}

describe("sampleEntropy and looksIncompressible", () => {
  test("random bytes measure close to 8 bits a byte, rows and text far below the line", () => {
    expect(sampleEntropy(new Uint8Array(randomBytes(2048)))).toBeGreaterThan(7.85);
    expect(sampleEntropy(jsonRows(2048))).toBeLessThan(6.5);
    expect(sampleEntropy(new Uint8Array(2048))).toBe(0);
    expect(sampleEntropy(new Uint8Array(0))).toBe(0);
    expect(() => sampleEntropy(new Uint8Array(2049))).toThrow(RangeError);
  });

  test("a piece counts as incompressible only when both its ends look random, and never when too short to sample twice", () => {
    const random = new Uint8Array(randomBytes(48 * KiB));
    expect(looksIncompressible(random)).toBe(true);
    expect(looksIncompressible(random.subarray(0, 4095))).toBe(false);
    const rowsThenRandom = new Uint8Array(48 * KiB);
    rowsThenRandom.set(jsonRows(8 * KiB));
    rowsThenRandom.set(random.subarray(8 * KiB), 8 * KiB);
    expect(looksIncompressible(rowsThenRandom)).toBe(false);
    const randomThenZeros = random.slice();
    randomThenZeros.fill(0, 40 * KiB);
    expect(looksIncompressible(randomThenZeros)).toBe(false);
  });
});

describe("storedPiece", () => {
  test("open stored pieces end as open pieces must, and with a final one inflate back to the bytes", () => {
    const bytes = new Uint8Array(randomBytes(200 * KiB));
    const parts = [bytes.subarray(0, 48 * KiB), bytes.subarray(48 * KiB, 48 * KiB + 70_000), bytes.subarray(48 * KiB + 70_000)];
    const pieces = parts.map((part, i) => storedPiece(part, i === parts.length - 1));
    // More than one stored block where a piece passes 65 535 bytes.
    expect(pieces[1]!.length).toBe(70_000 + 10);
    for (const [i, piece] of pieces.slice(0, -1).entries()) expect(endsOpen(piece, parts[i]!.length)).toBe(true);
    expect(Buffer.from(inflateRawSync(Buffer.concat(pieces))).equals(Buffer.from(bytes))).toBe(true);
    // An open piece alone inflates too, up to its end (no final block).
    expect(Buffer.from(inflateRawSync(pieces[0]!, { finishFlush: constants.Z_SYNC_FLUSH })).equals(Buffer.from(parts[0]!))).toBe(true);
  });

  test("an empty final piece is an empty final stored block", () => {
    const end = storedPiece(new Uint8Array(0), true);
    expect([...end]).toEqual([1, 0, 0, 0xff, 0xff]);
    expect(inflateRawSync(end).length).toBe(0);
  });
});

describe("storingIncompressible", () => {
  test("random pieces are stored without deflating them, rows are deflated, and the blocks make one stream", () => {
    const { deflater, calls } = counting(libdeflate);
    const storing = storingIncompressible(deflater);
    const random = new Uint8Array(randomBytes(1024 * KiB));
    const rows = jsonRows(1024 * KiB);
    // Copies: a block's output is the deflaters' memory until the next block (`PiecedBlock.output`).
    const block = (input: Uint8Array, last: boolean) => ({ output: deflatePieces(input, last, storing).output.slice() });
    const blocks = [block(random, false), block(rows, false), block(random.subarray(0, 300 * KiB), true)];
    // 1 MiB blocks go in 22 pieces of at most 48 KiB; only the rows' are deflated.
    expect(calls()).toBe(22);
    expect(blocks[0]!.output.length).toBe(random.length + 5 * 22);
    expect(blocks[1]!.output.length).toBeLessThan(rows.length / 3);
    const whole = Buffer.concat([random, rows, random.subarray(0, 300 * KiB)]);
    expect(Buffer.from(inflateRawSync(Buffer.concat(blocks.map((b) => b.output)))).equals(whole)).toBe(true);
  });

  test("property: any mix of random, repeated and empty runs, cut into blocks anywhere, inflates back to itself", () => {
    const run = fc.oneof(
      fc.integer({ min: 0, max: 120 * KiB }).map((n) => new Uint8Array(randomBytes(n))),
      fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 60 * KiB })).map(([byte, n]) => new Uint8Array(n).fill(byte)),
      fc.integer({ min: 0, max: 60 * KiB }).map((n) => jsonRows(n)),
    );
    fc.assert(
      fc.property(fc.array(run, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 200 * KiB }), { minLength: 1, maxLength: 4 }), (runs, cuts) => {
        const input = Buffer.concat(runs);
        const storing = storingIncompressible(libdeflate);
        const blocks: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < input.length || blocks.length === 0; i++) {
          const size = cuts[i % cuts.length]!;
          const last = at + size >= input.length;
          blocks.push(deflatePieces(input.subarray(at, at + size), last, storing).output.slice());
          at += size;
        }
        expect(Buffer.from(inflateRawSync(Buffer.concat(blocks))).equals(input)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
