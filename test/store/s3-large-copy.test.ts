import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { S3BackupStore } from "../../src/store/s3-backup-store.ts";
import { partRanges } from "../../src/store/s3-large-copy.ts";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.ts";
import { startS3rver, type S3Server } from "../support/s3rver.ts";

const MiB = 1024 * 1024;

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(() => s3.stop());

/**
 * An upload checked before it is published is copied from its temp object to its key. Over 5 GiB S3 refuses a
 * single CopyObject; here the limit is lowered to 6 MiB so a 23 MiB archive takes the same path.
 */
async function uploadChecked(endpoint: string, key: string, data: Uint8Array) {
  const store = new S3BackupStore(s3.descriptor({ endpoint, partSize: 5 * MiB, largeCopy: { maxSingleCopy: 6 * MiB, copyPartSize: 5 * MiB } }));
  const pending = await store.write(key);
  const writer = pending.stream.getWriter();
  for (let i = 0; i < data.length; i += MiB) await writer.write(data.subarray(i, i + MiB));
  await writer.close();
  const sha256 = createHash("sha256").update(data).digest("hex");
  await pending.commit(sha256);
  return { store, sha256 };
}

async function objectBytes(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await s3.client().getObject(s3.bucket, key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("copying a backup over S3's single-copy limit", () => {
  const data = new Uint8Array(randomBytes(23 * MiB + 12345));

  test("where the server copies parts (UploadPartCopy): one part per range, numbered in order, the copy byte-identical with its checksum", async () => {
    const proxy: FaultProxy = startFaultProxy(s3.endpoint);
    try {
      proxy.servePartCopies = true;
      const { store, sha256 } = await uploadChecked(proxy.endpoint, "big-copied.zip", data);
      // 23 MiB in 5 MiB parts: 5 parts, the last one short, each its own range of the temp object.
      expect(proxy.partCopies.sort((a, b) => a.part - b.part)).toEqual(
        [0, 1, 2, 3, 4].map((i) => ({ part: i + 1, range: `bytes=${i * 5 * MiB}-${Math.min(data.length, (i + 1) * 5 * MiB) - 1}` })),
      );
      expect((await objectBytes("big-copied.zip")).equals(data)).toBe(true);
      expect((await store.stat("big-copied.zip")).sha256).toBe(sha256);
      expect((await store.list()).map((b) => b.key)).toContain("big-copied.zip");
    } finally {
      await proxy.stop();
    }
  });

  test("where the server has no UploadPartCopy (s3rver answers NotImplemented): the parts go through the store, the copy byte-identical with its checksum", async () => {
    const proxy = startFaultProxy(s3.endpoint);
    try {
      const { store, sha256 } = await uploadChecked(proxy.endpoint, "big-streamed.zip", data);
      // Every byte was fetched by range once, to be sent again as a part.
      expect(proxy.rangeBytesRead).toBe(data.length);
      expect((await objectBytes("big-streamed.zip")).equals(data)).toBe(true);
      expect((await store.stat("big-streamed.zip")).sha256).toBe(sha256);
    } finally {
      await proxy.stop();
    }
    // The temp object is gone: nothing but the backup (and no sidecar: its checksum is its metadata).
    const names = await new Promise<string[]>((resolve, reject) => {
      const found: string[] = [];
      s3.client().listObjectsV2(s3.bucket, "", true).on("data", (o) => found.push(o.name!)).on("error", reject).on("end", () => resolve(found));
    });
    expect(names.filter((n) => n.startsWith(".tmp/"))).toEqual([]);
  });

  test("a part copy that fails fails the attempt, which is retried whole: the copy still lands byte-identical", async () => {
    const proxy = startFaultProxy(s3.endpoint);
    try {
      proxy.servePartCopies = true;
      proxy.failPartCopies = 1;
      await uploadChecked(proxy.endpoint, "big-retried.zip", data);
      expect(proxy.failPartCopies).toBe(0);
      // The second attempt copied all five parts again.
      expect(proxy.partCopies.length).toBeGreaterThanOrEqual(5 + 1);
      expect((await objectBytes("big-retried.zip")).equals(data)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });
});

describe("partRanges", () => {
  test("cover the object in order, no gap or overlap, within S3's limits (≤ 10 000 parts of ≤ 5 GiB)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 42 }), fc.integer({ min: 5 * MiB, max: 6 * 1024 * MiB }), (size, partSize) => {
        const ranges = partRanges(size, partSize);
        expect(ranges.length).toBeLessThanOrEqual(10_000);
        expect(ranges[0]!.start).toBe(0);
        expect(ranges.at(-1)!.end).toBe(size);
        for (const [i, range] of ranges.entries()) {
          expect(range.end - range.start).toBeLessThanOrEqual(5 * 1024 ** 3);
          if (i > 0) expect(range.start).toBe(ranges[i - 1]!.end);
          if (i < ranges.length - 1) expect(range.end - range.start).toBeGreaterThanOrEqual(Math.min(partSize, 5 * 1024 ** 3));
        }
      }),
      { numRuns: 300 },
    );
  });
});
