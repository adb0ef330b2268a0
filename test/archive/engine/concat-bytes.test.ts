import { expect, test } from "bun:test";
import { concatBytes } from "../../../src/archive/engine/index.ts";

test("concatBytes: one part as it is, parts side by side in one buffer as a view, anything else copied", () => {
  const run = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const whole = concatBytes([run.subarray(1, 3), run.subarray(3, 5)]);
  expect([...whole]).toEqual([2, 3, 4, 5]);
  expect(whole.buffer).toBe(run.buffer); // read back in one run: no copy

  const apart = concatBytes([run.subarray(0, 2), run.subarray(3, 4), [9, 9], new Uint8Array([7])]);
  expect([...apart]).toEqual([1, 2, 4, 9, 9, 7]);
  expect(apart.buffer).not.toBe(run.buffer);

  expect(concatBytes([run])).toBe(run);
  expect(concatBytes([]).length).toBe(0);
});
