import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileSink, SYNC_WRITE_BYTES } from "../../src/jobs/file-sink.ts";
import { countingDatasyncs } from "../support/datasync-count.ts";
import { tempDirsRemovedAfterEach } from "../support/temp-dirs.ts";

const tempDir = tempDirsRemovedAfterEach();

/** Writes `mib` MiB in 1 MiB chunks through a sink made with `writeBehind`; the fdatasync calls it made. */
async function datasyncsWriting(mib: number, writeBehind: boolean, flushAfterMb?: string): Promise<number> {
  const dir = await tempDir();
  const path = join(dir, "sub", "data.db");
  const chunk = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
  const calls = await countingDatasyncs(dir, flushAfterMb, async () => {
    const sink = await fileSink(path, { mode: 0o644, size: mib * chunk.length, writeBehind });
    const writer = sink.getWriter();
    for (let i = 0; i < mib; i++) await writer.write(chunk);
    await writer.close();
  });
  const written = await readFile(path);
  expect(written.length).toBe(mib * chunk.length);
  expect(written.subarray(written.length - chunk.length).equals(Buffer.from(chunk))).toBe(true);
  return calls;
}

describe("fileSink's write-behind (a restore's large files)", () => {
  test("a large file is flushed every 16 MiB as it is written, or every N MiB with BACKSTREAM_FLUSH_AFTER_MB, and whole", async () => {
    expect(await datasyncsWriting(40, true)).toBe(2);
    expect(await datasyncsWriting(40, true, "4")).toBe(10);
  });

  test("none without writeBehind, with BACKSTREAM_FLUSH_AFTER_MB=0, or for a small file written with synchronous calls", async () => {
    expect(await datasyncsWriting(40, false)).toBe(0);
    expect(await datasyncsWriting(40, true, "0")).toBe(0);
    const dir = await tempDir();
    const calls = await countingDatasyncs(dir, "0", async () => {
      const writer = (await fileSink(join(dir, "small"), { mode: 0o644, size: SYNC_WRITE_BYTES, writeBehind: true })).getWriter();
      await writer.write(new Uint8Array(SYNC_WRITE_BYTES));
      await writer.close();
    });
    expect(calls).toBe(0);
  });
});
