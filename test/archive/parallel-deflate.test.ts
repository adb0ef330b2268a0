import { describe, expect, test } from "bun:test";
import { inflateRawSync, gunzipSync } from "node:zlib";
import { ParallelDeflater, ParallelDeflateStream } from "../../src/archive/parallel-deflate-stream.ts";

/** Compressible but not trivial: rows of JSON-ish text with varying numbers. */
function sampleData(bytes: number): Uint8Array {
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const line = `{"id":${i},"name":"row ${i % 977}","score":${(i * 7919) % 10007}}\n`;
    parts.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(parts.join("")).subarray(0, bytes);
}

describe("ParallelDeflater", () => {
  test("its blocks concatenate into one raw deflate stream that node:zlib inflates back", async () => {
    const input = sampleData(5 * 1024 * 1024 + 12345);
    const deflater = new ParallelDeflater({ level: 2, blockSize: 256 * 1024, maxInFlight: 4 });
    const out: Uint8Array[] = [];
    for (let at = 0; at < input.length; at += 100_000) await deflater.write(input.subarray(at, at + 100_000), (d) => void out.push(d));
    await deflater.end((d) => void out.push(d));
    const compressed = Buffer.concat(out);
    expect(compressed.length).toBeLessThan(input.length / 3);
    expect(Buffer.from(inflateRawSync(compressed)).equals(Buffer.from(input))).toBe(true);
  });

  test("keeps at most maxInFlight blocks pending: output flows before the input ends", async () => {
    const deflater = new ParallelDeflater({ level: 1, blockSize: 64 * 1024, maxInFlight: 3 });
    const input = sampleData(64 * 1024 * 40);
    let emitted = 0;
    for (let at = 0; at < input.length; at += 64 * 1024) await deflater.write(input.subarray(at, at + 64 * 1024), () => void emitted++);
    expect(emitted).toBeGreaterThanOrEqual(40 - 3);
    await deflater.end(() => void emitted++);
    expect(emitted).toBe(41);
  });

  test("an empty input is a valid empty stream", async () => {
    const out: Uint8Array[] = [];
    await new ParallelDeflater().end((d) => void out.push(d));
    expect(inflateRawSync(Buffer.concat(out)).length).toBe(0);
  });

  test("as a gzip TransformStream, its CRC-32 and size trailer satisfy gunzip", async () => {
    const input = sampleData(3 * 1024 * 1024);
    const chunks: Uint8Array[] = [];
    for await (const c of new Blob([input as BlobPart]).stream().pipeThrough(new ParallelDeflateStream({ gzip: true, blockSize: 512 * 1024 }))) chunks.push(c);
    expect(Buffer.from(gunzipSync(Buffer.concat(chunks))).equals(Buffer.from(input))).toBe(true);
  });
});
