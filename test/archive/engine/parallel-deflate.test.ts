import { describe, expect, test } from "bun:test";
import { inflateRawSync } from "node:zlib";
import { OrderedOutput } from "../../../src/archive/zip/index.ts";
import { ParallelDeflater } from "../../../src/archive/engine/index.ts";
import { jsonRows as sampleData } from "../../support/sample-data.ts";

/** Deflates `input` fed in `feed`-byte chunks through an `OrderedOutput` holding at most `maxPending` input bytes. */
async function deflateAll(input: Uint8Array, feed: number, blockSize: number, maxPending: number, onWrite = () => {}) {
  const out: Uint8Array[] = [];
  const output = new OrderedOutput((data) => {
    out.push(data);
    onWrite();
  }, maxPending);
  const deflater = new ParallelDeflater((block, bytes) => output.push(block.then((b) => b.data), bytes), { level: 2, blockSize });
  for (let at = 0; at < input.length; at += feed) await deflater.write(input.subarray(at, at + feed));
  await deflater.end();
  return { out, output };
}

describe("ParallelDeflater", () => {
  test("its blocks concatenate into one raw deflate stream that node:zlib inflates back", async () => {
    const input = sampleData(5 * 1024 * 1024 + 12345);
    const { out, output } = await deflateAll(input, 100_000, 256 * 1024, 1024 * 1024);
    await output.drain();
    const compressed = Buffer.concat(out);
    expect(compressed.length).toBeLessThan(input.length / 3);
    expect(Buffer.from(inflateRawSync(compressed)).equals(Buffer.from(input))).toBe(true);
  });

  test("chunks holding whole blocks, partial ones and both mixed all come back byte for byte", async () => {
    const blockSize = 64 * 1024;
    const input = sampleData(blockSize * 9 + 123);
    // Whole blocks go to zlib as views of the chunk, partial ones through the block buffer: cover every seam.
    const cuts = [10, blockSize * 3 + 5, blockSize - 15, blockSize * 2, 7, blockSize * 3];
    const out: Uint8Array[] = [];
    const output = new OrderedOutput((data) => void out.push(data), blockSize * 3);
    const deflater = new ParallelDeflater((block, bytes) => output.push(block.then((b) => b.data), bytes), { level: 2, blockSize });
    let at = 0;
    for (const cut of cuts) {
      await deflater.write(input.subarray(at, at + cut));
      at += cut;
    }
    await deflater.write(input.subarray(at));
    await deflater.end();
    await output.drain();
    expect(Buffer.from(inflateRawSync(Buffer.concat(out))).equals(Buffer.from(input))).toBe(true);
  });

  test("output flows before the input ends: no more than the pending budget is held back", async () => {
    const input = sampleData(64 * 1024 * 40);
    let written = 0;
    const { output } = await deflateAll(input, 64 * 1024, 64 * 1024, 3 * 64 * 1024, () => void written++);
    // 40 full blocks then an empty final one; at most 3 blocks' worth may still wait when the input ends.
    expect(written).toBeGreaterThanOrEqual(41 - 4);
    await output.drain();
    expect(written).toBe(41);
  });

  test("an empty input is a valid empty stream", async () => {
    const { out, output } = await deflateAll(new Uint8Array(0), 1, 1024, 1024);
    await output.drain();
    expect(inflateRawSync(Buffer.concat(out)).length).toBe(0);
  });
});

describe("OrderedOutput", () => {
  test("writes pieces in the order pushed, whenever each is ready, with the offset of each", async () => {
    const written: string[] = [];
    const output = new OrderedOutput((data) => void written.push(new TextDecoder().decode(data)), 100);
    const offsets: number[] = [];
    let release!: (data: Uint8Array) => void;
    const slow = new Promise<Uint8Array>((resolve) => (release = resolve));
    await output.push(new TextEncoder().encode("a"), 1, (o) => void offsets.push(o));
    await output.push(slow, 1, (o) => void offsets.push(o));
    await output.push(new TextEncoder().encode("ccc"), 1, (o) => void offsets.push(o));
    expect(written).toEqual([]);
    release(new TextEncoder().encode("bb"));
    await output.drain();
    expect(written).toEqual(["a", "bb", "ccc"]);
    expect(offsets).toEqual([0, 1, 3]);
    expect(output.offset).toBe(6);
  });

  test("a failed piece fails the drain, and nothing after it is written", async () => {
    const written: number[] = [];
    const output = new OrderedOutput((data) => void written.push(data.length), 100);
    await output.push(Promise.reject(new Error("deflate failed")), 1);
    await output.push(new Uint8Array(5), 1);
    await expect(output.drain()).rejects.toThrow("deflate failed");
    expect(written).toEqual([]);
  });
});
