import { describe, expect, test } from "bun:test";
import { reusedBuffers } from "../src/uninitialized-bytes.ts";

describe("reusedBuffers", () => {
  test("hands out its buffers in turn, each as long as asked, and a new one for a longer read", () => {
    const take = reusedBuffers(3, 1024);
    const first = [take(1024), take(10), take(1024)];
    expect(first.map((b) => b.length)).toEqual([1024, 10, 1024]);
    expect(new Set(first.map((b) => b.buffer)).size).toBe(3);
    // The fourth is the first again: three in turn, never one still held within the next two.
    expect(take(512).buffer).toBe(first[0]!.buffer);
    const long = take(4096);
    expect(long.length).toBe(4096);
    expect(first.map((b) => b.buffer)).not.toContain(long.buffer);
  });
});
