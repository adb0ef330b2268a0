import { describe, expect, test } from "bun:test";
import { RangeCache } from "../../src/store/range-cache.ts";

const KiB = 1024;

/** An object of `size` bytes behind a fetch that counts what it sends, as a ranged GET would. */
function remote(size: number) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 8)) & 0xff;
  const log = { fetches: 0, bytes: 0, failNext: 0 };
  const fetchRange = async (offset: number, length: number) => {
    await Promise.resolve(); // answers arrive later, as over a network
    if (log.failNext > 0) {
      log.failNext--;
      throw new Error("connection reset");
    }
    log.fetches++;
    log.bytes += length;
    return bytes.slice(offset, offset + length);
  };
  return { bytes, log, fetchRange };
}

/** 500 reads at offsets and of lengths drawn from `seed`, each checked against the object's bytes. */
async function expectRandomReads(cache: RangeCache, bytes: Uint8Array, seed: number) {
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let i = 0; i < 500; i++) {
    const offset = random(bytes.length);
    const length = random(40 * KiB) + 1;
    expect(await cache.read(offset, length)).toEqual(bytes.subarray(offset, Math.min(bytes.length, offset + length)));
  }
}

test("every read returns exactly the object's bytes, across window ends and up to the object's end", async () => {
  const object = remote(100 * KiB + 7);
  const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 3 });
  await expectRandomReads(cache, object.bytes, 7);
  expect((await cache.read(object.bytes.length, 10)).length).toBe(0);
});

test("three readers going through the object at once fetch each byte once, in few requests", async () => {
  const object = remote(3 * 256 * KiB);
  const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 32 * KiB, maxWindows: 6 });
  // Like a restore's lanes: each reads its own entry front to back in 20 KiB reads, the three interleaved.
  const reader = async (start: number) => {
    for (let at = start; at < start + 256 * KiB; at += 20 * KiB) {
      const length = Math.min(20 * KiB, start + 256 * KiB - at);
      expect(await cache.read(at, length)).toEqual(object.bytes.subarray(at, at + length));
    }
  };
  await Promise.all([reader(0), reader(256 * KiB), reader(512 * KiB)]);
  expect(object.log.bytes).toBe(object.bytes.length);
  expect(object.log.fetches).toBeLessThanOrEqual((3 * 256) / 32 + 3);
});

test("a reader past the middle of its window has the next one fetched before it asks, and only once", async () => {
  const object = remote(64 * KiB);
  const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 4 });
  await cache.read(0, 4 * KiB);
  expect(object.log.fetches).toBe(1);
  await cache.read(4 * KiB, 6 * KiB); // now past the middle
  expect(object.log.fetches).toBe(2);
  expect(await cache.read(16 * KiB, 8 * KiB)).toEqual(object.bytes.subarray(16 * KiB, 24 * KiB));
  expect(object.log.fetches).toBe(2);
});

test("reads of a range being fetched share the fetch", async () => {
  const object = remote(64 * KiB);
  const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 4 });
  const reads = await Promise.all([cache.read(0, 100), cache.read(50, 100), cache.read(1000, 4 * KiB)]);
  expect(reads[1]).toEqual(object.bytes.subarray(50, 150));
  expect(object.log.fetches).toBe(1);
});

test("a failed fetch is not kept: the next read of the range fetches it again", async () => {
  const object = remote(64 * KiB);
  const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 4 });
  object.log.failNext = 1;
  expect(await cache.read(0, 100).then(() => "read", (error: Error) => error.message)).toBe("connection reset");
  expect(await cache.read(0, 100)).toEqual(object.bytes.subarray(0, 100));
});

test("no more than maxWindows windows are kept, so memory stays bounded on a long read", async () => {
  const object = remote(1024 * KiB);
  const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 2 });
  for (let at = 0; at < object.bytes.length; at += 8 * KiB) await cache.read(at, 8 * KiB);
  const fetched = object.log.fetches;
  // The start was evicted long ago: reading it again is a new fetch.
  await cache.read(0, 10);
  expect(object.log.fetches).toBe(fetched + 1);
});

describe("skipped ranges (entries a restore copies from elsewhere)", () => {
  test("no window reaches into them, and reading ahead jumps over them", async () => {
    const object = remote(64 * KiB);
    const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 4 });
    cache.skip([[20 * KiB, 40 * KiB]]);
    cache.skip([[12 * KiB, 20 * KiB]]); // touching the first: one range
    expect(await cache.read(0, 8 * KiB)).toEqual(object.bytes.subarray(0, 8 * KiB)); // past its window's middle
    expect(await cache.read(40 * KiB, 8 * KiB)).toEqual(object.bytes.subarray(40 * KiB, 48 * KiB));
    // [0, 12 KiB) cut short at the skipped range, then [40, 56 KiB) read ahead
    expect(object.log).toMatchObject({ fetches: 2, bytes: 28 * KiB });
  });

  test("a read inside one after all gets what it asks for, and no more", async () => {
    const object = remote(64 * KiB);
    const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 4 });
    cache.skip([[16 * KiB, 64 * KiB]]); // to the end, so that nothing is read ahead
    // like a data descriptor read at the end of the entry before: it reaches 8 bytes into the skipped one
    expect(await cache.read(16 * KiB - 16, 24)).toEqual(object.bytes.subarray(16 * KiB - 16, 16 * KiB + 8));
    // 16 bytes in a window cut short at the skipped range, then its first 8 bytes alone
    expect(object.log).toMatchObject({ fetches: 2, bytes: 24 });
    expect(await cache.read(20 * KiB, 4 * KiB)).toEqual(object.bytes.subarray(20 * KiB, 24 * KiB));
    expect(object.log).toMatchObject({ fetches: 3, bytes: 24 + 4 * KiB });
  });

  test("every read still returns exactly the object's bytes", async () => {
    const object = remote(100 * KiB + 7);
    const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 16 * KiB, maxWindows: 3 });
    cache.skip([[31 * KiB + 40, 70 * KiB], [5 * KiB, 9 * KiB], [99 * KiB, 100 * KiB + 7], [30 * KiB, 31 * KiB]]);
    await expectRandomReads(cache, object.bytes, 11);
  });
});

test("a small read has a buffer of its own, so a header the caller keeps does not keep its whole window alive", async () => {
  // zip.js keeps each entry's local header: views of 8 MiB windows held 2.7 GB by the end of a 2.5 GB archive's check.
  const object = remote(4 * 64 * KiB);
  const cache = new RangeCache(object.bytes.length, object.fetchRange, { windowSize: 2 * 64 * KiB, maxWindows: 2 });
  const header = await cache.read(100, 30);
  expect(header).toEqual(object.bytes.subarray(100, 130));
  expect(header.buffer.byteLength).toBe(30);
  // Across two windows, the read is joined into a buffer of its own as well.
  expect((await cache.read(2 * 64 * KiB - 10, 20)).buffer.byteLength).toBe(20);
  // Data reads stay views: copying every chunk of a restore would cost a pass over the archive.
  const data = await cache.read(200, 64 * KiB + 1);
  expect(data).toEqual(object.bytes.subarray(200, 200 + 64 * KiB + 1));
  expect(data.buffer.byteLength).toBe(2 * 64 * KiB);
});
