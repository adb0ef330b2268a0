// Small output pieces gathered into larger writes (src/archive/zip/batched-writes.ts): the same bytes in the same
// order, far fewer writes, each batch memory of its own (a writer may keep what it is given), and lent pieces
// given back once copied.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { batchedWrites } from "../../../src/archive/zip/batched-writes.ts";
import { isLent, lend } from "../../../src/archive/zip/lent-bytes.ts";

test("any pieces come out as the same bytes in order, small ones copied into batches of their own memory", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 4_000, max: 300_000 })), { maxLength: 60 }), async (sizes) => {
      const kept: Uint8Array[] = []; // held as given, never copied: a reused batch would show here
      const batches = batchedWrites(async (data) => void kept.push(data), 64 * 1024);
      const expected: Uint8Array[] = [];
      let next = 0;
      for (const size of sizes) {
        const piece = Uint8Array.from({ length: size }, () => next++ & 0xff);
        expected.push(piece.slice());
        await batches.write(piece);
        if (size < 64 * 1024) piece.fill(0); // a gathered piece is copied: changing it afterwards changes nothing
      }
      await batches.flush();
      expect(Buffer.concat(kept).equals(Buffer.concat(expected))).toBe(true);
      // Every write but an as-is piece is a batch of at most 64 KiB; no empty writes.
      for (const data of kept) expect(data.length).toBeGreaterThan(0);
    }),
    { numRuns: 60, seed: 20261207 },
  );
});

test("50 000 small pieces make a few dozen writes; a large one goes as it is, after what was gathered", async () => {
  const writes: number[] = [];
  const batches = batchedWrites(async (data) => void writes.push(data.length), 1024 * 1024);
  for (let i = 0; i < 50_000; i++) await batches.write(new Uint8Array(100));
  await batches.write(new Uint8Array(300_000));
  await batches.write(new Uint8Array(10));
  await batches.flush();
  await batches.flush(); // nothing left: no empty write
  expect(writes.length).toBe(Math.ceil(5_000_000 / (1024 * 1024)) + 2);
  expect(writes.at(-2)).toBe(300_000);
  expect(writes.at(-1)).toBe(10);
  expect(writes.reduce((a, b) => a + b, 0)).toBe(5_000_000 + 300_010);
});

test("a lent piece that is gathered is given back once copied; one written as it is stays lent, for its writer to give back", async () => {
  const written: Uint8Array[] = [];
  const batches = batchedWrites(async (data) => void written.push(data), 64 * 1024);
  let returned = 0;
  const small = lend(new Uint8Array(1000).fill(1), () => returned++);
  const large = lend(new Uint8Array(300_000).fill(2), () => returned++);
  await batches.write(small);
  expect([returned, isLent(small)]).toEqual([1, false]);
  small.fill(9); // given back: its lender may reuse it, and the batch holds its own copy
  await batches.write(large);
  await batches.flush();
  expect(returned).toBe(1);
  expect(isLent(large)).toBe(true);
  expect(written.map((data) => [data.length, data[0]])).toEqual([[1000, 1], [300_000, 2]]);
  expect(written[1]).toBe(large);
});
