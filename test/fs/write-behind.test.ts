import { describe, expect, test } from "bun:test";
import { WriteBehind } from "../../src/fs/write-behind.ts";

/** A datasync that counts its calls and whose flushes finish only when the test says. */
function heldDatasyncs() {
  const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  return {
    pending,
    get mostInFlight() {
      return mostInFlight;
    },
    datasync: () =>
      new Promise<void>((resolve, reject) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        const done = () => inFlight--;
        pending.push({ resolve: () => (done(), resolve()), reject: (error) => (done(), reject(error)) });
      }),
  };
}

describe("WriteBehind", () => {
  test("starts a flush each time `everyBytes` more are written, never two at once", async () => {
    const syncs = heldDatasyncs();
    const behind = new WriteBehind(syncs.datasync, 100);
    await behind.wrote(60);
    expect(syncs.pending).toHaveLength(0);
    await behind.wrote(60); // 120: the first flush starts, and is not waited for
    expect(syncs.pending).toHaveLength(1);
    await behind.wrote(99);
    expect(syncs.pending).toHaveLength(1);
    let second = false;
    const writing = behind.wrote(1).then(() => (second = true)); // 100 more: waits for the first flush
    await Promise.resolve();
    expect(second).toBe(false);
    syncs.pending[0]!.resolve();
    await writing;
    expect(syncs.pending).toHaveLength(2);
    expect(syncs.mostInFlight).toBe(1);
    syncs.pending[1]!.resolve();
    await behind.settled();
  });

  test("a failed flush is thrown by the next write that waits for it, or by settled", async () => {
    for (const waitBy of ["write", "settled"] as const) {
      const syncs = heldDatasyncs();
      const behind = new WriteBehind(syncs.datasync, 10);
      await behind.wrote(10);
      syncs.pending[0]!.reject(new Error("ENOSPC: no space left on device"));
      await expect(waitBy === "write" ? behind.wrote(10) : behind.settled()).rejects.toThrow("ENOSPC");
    }
  });

  test("with everyBytes 0 (BACKSTREAM_FLUSH_AFTER_MB=0) it never flushes", async () => {
    const syncs = heldDatasyncs();
    const behind = new WriteBehind(syncs.datasync, 0);
    for (let i = 0; i < 100; i++) await behind.wrote(1024 * 1024);
    expect(syncs.pending).toHaveLength(0);
  });
});
