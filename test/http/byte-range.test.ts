import { expect, test } from "bun:test";
import { parseRange } from "../../src/http/byte-range.ts";

test("parseRange follows RFC 9110 for single ranges", () => {
  expect(parseRange(null, 100)).toBeUndefined();
  expect(parseRange("bytes=0-9", 100)).toEqual({ start: 0, end: 9 });
  expect(parseRange("bytes=90-", 100)).toEqual({ start: 90, end: 99 });
  expect(parseRange("bytes=90-500", 100)).toEqual({ start: 90, end: 99 });
  expect(parseRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 });
  expect(parseRange("bytes=-500", 100)).toEqual({ start: 0, end: 99 });
  expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable");
  expect(parseRange("bytes=-0", 100)).toBe("unsatisfiable");
  expect(parseRange("bytes=0-1,5-6", 100)).toBeUndefined();
  expect(parseRange("items=0-1", 100)).toBeUndefined();
});
