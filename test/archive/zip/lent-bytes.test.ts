// Bytes lent for one trip to the output (src/archive/zip/lent-bytes.ts): given back once, and copied where a
// holder cannot promise to be done with them in time.
import { expect, test } from "bun:test";
import { giveBack, isLent, lend, ownBytes } from "../../../src/archive/zip/lent-bytes.ts";

test("lent bytes go back to their lender once, however often they are given back; others are left alone", () => {
  let returned = 0;
  const bytes = lend(new Uint8Array([1, 2, 3]), () => returned++);
  expect(isLent(bytes)).toBe(true);
  // A view of the same memory is another array: only the one lent counts.
  expect(isLent(bytes.subarray(0))).toBe(false);
  giveBack(bytes.subarray(0));
  expect(returned).toBe(0);
  giveBack(bytes);
  giveBack(bytes);
  expect([returned, isLent(bytes)]).toEqual([1, false]);
  giveBack(new Uint8Array(4));
  expect(returned).toBe(1);
});

test("ownBytes copies lent bytes and gives them back at once; bytes of one's own come back as they are", () => {
  let returned = 0;
  const lent = lend(new Uint8Array([4, 5, 6]), () => returned++);
  const copy = ownBytes(lent);
  expect(returned).toBe(1);
  lent.fill(0); // the lender reuses its memory
  expect([...copy]).toEqual([4, 5, 6]);
  const own = new Uint8Array([7]);
  expect(ownBytes(own)).toBe(own);
});
