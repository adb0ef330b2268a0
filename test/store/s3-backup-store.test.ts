import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdir, utimes } from "node:fs/promises";
import { join } from "node:path";
import { S3BackupStore } from "../../src/store/s3-backup-store.ts";
import { startFaultProxy } from "../support/fault-proxy.ts";
import { startS3rver, type S3Server } from "../support/s3rver.ts";
import { runStoreContract } from "../support/store-contract.ts";

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(() => s3.stop());

describe("S3BackupStore against s3rver", () => {
  // One bucket for the suite, emptied before each test; 5 MiB parts (S3's minimum) so 3.5 MB writes are one part
  // and the larger ones in the end-to-end tests are several.
  const emptyStore = async (endpoint = s3.endpoint) => {
    const store = new S3BackupStore(s3.descriptor({ endpoint, partSize: 5 * 1024 * 1024 }));
    for (const item of await store.list()) await store.delete(item.key);
    return store;
  };
  runStoreContract(() => emptyStore());

  test("cleanup removes a day-old checksum whose backup is gone, keeps the rest, and looks up no object one by one", async () => {
    const proxy = startFaultProxy(s3.endpoint);
    try {
      const store = await emptyStore(proxy.endpoint);
      for (const key of ["kept.zip", "gone.zip", "gone-today.zip"]) {
        const pending = await store.write(key, { checkBeforeCommit: false });
        const writer = pending.stream.getWriter();
        await writer.write(new TextEncoder().encode(key));
        await writer.close();
        await pending.commit("0".repeat(64));
      }
      // Two backups deleted behind the store's back, their checksums left; two of the checksums are two days old.
      const bucket = s3.client();
      await bucket.removeObject(s3.bucket, "gone.zip");
      await bucket.removeObject(s3.bucket, "gone-today.zip");
      const metaDir = join(s3.dir, s3.bucket, ".meta");
      const twoDaysAgo = new Date(Date.now() - 48 * 3600 * 1000);
      for (const file of await readdir(metaDir)) {
        if (file.startsWith("kept.zip.sha256") || file.startsWith("gone.zip.sha256")) await utimes(join(metaDir, file), twoDaysAgo, twoDaysAgo);
      }
      proxy.heads = 0;
      await store.cleanup();
      expect(proxy.heads).toBe(0);
      const sidecars = await new Promise<string[]>((resolve, reject) => {
        const names: string[] = [];
        bucket.listObjectsV2(s3.bucket, ".meta/", true).on("data", (o) => names.push(o.name!)).on("error", reject).on("end", () => resolve(names));
      });
      expect(sidecars.sort()).toEqual([".meta/gone-today.zip.sha256", ".meta/kept.zip.sha256"]);
      expect((await store.stat("kept.zip")).sha256).toBe("0".repeat(64));
    } finally {
      await proxy.stop();
    }
  });

  test("a range answered short is fetched again: the reader gets exactly the bytes it asked for", async () => {
    const proxy = startFaultProxy(s3.endpoint);
    try {
      const store = await emptyStore(proxy.endpoint);
      const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7 + (i >> 10)) & 0xff);
      const pending = await store.write("cut.zip", { checkBeforeCommit: false });
      const writer = pending.stream.getWriter();
      await writer.write(bytes);
      await writer.close();
      await pending.commit("0".repeat(64));
      const source = await store.open("cut.zip");
      proxy.cutRangeReads = 1;
      // The window (to the end of the object) comes back half: this read lies in the half that was cut off.
      expect(await source.read(2_500_000, 500_000)).toEqual(bytes.subarray(2_500_000, 3_000_000));
      expect(proxy.cutRangeReads).toBe(0);
      await source.close();
    } finally {
      await proxy.stop();
    }
  });
});
