import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { LocalBackupStore } from "../../src/store/local-backup-store.ts";
import { countingDatasyncs } from "../support/datasync-count.ts";
import { runStoreContract } from "../support/store-contract.ts";
import { makeTempDir } from "../support/test-server.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("LocalBackupStore", () => {
  runStoreContract(async () => {
    const dir = await makeTempDir("local-store-");
    dirs.push(dir);
    return new LocalBackupStore(join(dir, "backups"));
  });
});

describe("LocalBackupStore's random access (what a restore reads through)", () => {
  test("small reads (synchronous) and large ones give the archive's bytes, each read memory of its own, and its SHA-256 beside them", async () => {
    const dir = await makeTempDir("local-store-");
    dirs.push(dir);
    const store = new LocalBackupStore(join(dir, "backups"));
    const bytes = crypto.getRandomValues(new Uint8Array(3 * 1024 * 1024 + 17));
    const pending = await store.write("a.zip");
    const writer = pending.stream.getWriter();
    await writer.write(bytes);
    await writer.close();
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    await pending.commit(sha256);
    const source = await store.open("a.zip");
    try {
      expect(source.freshReads).toBe(true);
      for (const [offset, length] of [[0, 30], [1000, 200_000], [5, 2 * 1024 * 1024], [bytes.length - 10, 100]] as const) {
        const read = await source.read(offset, length);
        expect(Buffer.from(read).equals(Buffer.from(bytes.subarray(offset, offset + length)))).toBe(true);
        read.fill(0); // the caller's own: the next read of the same bytes is not changed by it
        expect(Buffer.from(await source.read(offset, length)).equals(Buffer.from(bytes.subarray(offset, offset + length)))).toBe(true);
      }
      // Given memory to read into (a restore's read buffers), a large read and a small one come back in it.
      const into = new Uint8Array(2 * 1024 * 1024);
      for (const [offset, length] of [[7, 2 * 1024 * 1024], [bytes.length - 10, 100]] as const) {
        const read = await source.read(offset, length, into);
        expect([read.buffer, read.byteOffset]).toEqual([into.buffer, 0]);
        expect(Buffer.from(read).equals(Buffer.from(bytes.subarray(offset, offset + length)))).toBe(true);
      }
      expect(await source.sha256BesideReaders!().done).toBe(sha256);
    } finally {
      await source.close();
    }
  });
});

describe("LocalBackupStore's write-behind (BACKSTREAM_FLUSH_AFTER_MB)", () => {
  /** How many fdatasync calls storing 40 MiB in 1 MiB writes makes (FileHandle's own, counted). */
  async function datasyncsStoring40MiB(flushAfterMb: string | undefined): Promise<number> {
    const dir = await makeTempDir("local-store-");
    dirs.push(dir);
    return countingDatasyncs(dir, flushAfterMb, async () => {
      const store = new LocalBackupStore(join(dir, "backups"));
      const pending = await store.write("a.zip");
      const writer = pending.stream.getWriter();
      const chunk = new Uint8Array(1024 * 1024).fill(7);
      for (let i = 0; i < 40; i++) await writer.write(chunk);
      await writer.close();
      await pending.commit("0".repeat(64));
      expect((await store.stat("a.zip")).size).toBe(40 * 1024 * 1024);
    });
  }

  test("flushes every 16 MiB by default, every N MiB when told, and not before the end with 0", async () => {
    expect(await datasyncsStoring40MiB(undefined)).toBe(2);
    expect(await datasyncsStoring40MiB("4")).toBe(10);
    expect(await datasyncsStoring40MiB("0")).toBe(0);
  });
});
