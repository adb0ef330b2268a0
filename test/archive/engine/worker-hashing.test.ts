import { afterEach, describe, expect, test } from "bun:test";
import { inflateRawSync } from "node:zlib";
import { DeflateWorkers, type Sha256Hasher } from "../../../src/archive/engine/index.ts";
import { sha256Hex } from "../../support/archives.ts";
import { jsonRows } from "../../support/sample-data.ts";

const MiB = 1024 * 1024;

describe("hashing on the deflate workers (HashChannel)", () => {
  let workers: DeflateWorkers | undefined;
  afterEach(() => workers?.close());

  test("hashes streams on its thread, each as node:crypto would, whatever the chunk sizes, and one beside the others", async () => {
    workers = new DeflateWorkers(2);
    const hashing = workers.hashing;
    const entries = [jsonRows(3 * MiB + 17, 1), new Uint8Array(0), jsonRows(1000, 2), jsonRows(20 * MiB, 3)];
    const whole = hashing.begin(); // like the archive's hash, fed beside its entries' own
    const digests: Promise<string>[] = [];
    for (const [i, bytes] of entries.entries()) {
      const hasher = hashing.begin();
      // Small chunks, whole MiBs and odd sizes across the batch edges.
      const sizes = [1, 4096, MiB, 2 * MiB + 3, 70_000];
      for (let at = 0, k = i; at < bytes.length; k++) {
        const chunk = bytes.subarray(at, at + sizes[k % sizes.length]!);
        await hasher.update(chunk);
        await whole.update(chunk);
        at += chunk.length;
      }
      digests.push(hasher.digest()); // not awaited: the next entry starts meanwhile
    }
    expect(await Promise.all(digests)).toEqual(entries.map(sha256Hex));
    expect(await whole.digest()).toBe(sha256Hex(new Uint8Array(Buffer.concat(entries))));
  });

  test("streams fed at once on one worker each get their digest (a restore's lanes): none waits forever for the others", async () => {
    workers = new DeflateWorkers(1);
    const entries = [jsonRows(9 * MiB, 11), jsonRows(7 * MiB + 5, 12), jsonRows(8 * MiB, 13)];
    const digests = await Promise.all(
      entries.map(async (bytes) => {
        const hasher = workers!.hashing.begin();
        for (let at = 0; at < bytes.length; at += MiB) await hasher.update(bytes.subarray(at, at + MiB));
        return hasher.digest();
      }),
    );
    expect(digests).toEqual(entries.map(sha256Hex));
  });

  test("more streams open at once than the channel has batches: each gets its digest, none waits for the others", async () => {
    workers = new DeflateWorkers(1);
    const entries = Array.from({ length: 12 }, (_, i) => jsonRows(MiB + 1000 * i, 20 + i));
    const hashers = entries.map(() => workers!.hashing.begin());
    // Interleaved pieces smaller than a batch: every stream has bytes waiting in some batch at once.
    for (let at = 0; at < entries.at(-1)!.length; at += 300_000) {
      for (const [i, bytes] of entries.entries()) await hashers[i]!.update(bytes.subarray(at, at + 300_000));
    }
    expect(await Promise.all(hashers.map((hasher) => hasher.digest()))).toEqual(entries.map(sha256Hex));
  });

  test("the caller's chunks stay its own: a Buffer, whose slice would share memory, is copied, not taken", async () => {
    workers = new DeflateWorkers(1);
    const chunk = Buffer.from(jsonRows(2 * MiB, 4));
    const hasher = workers.hashing.begin();
    await hasher.update(chunk);
    expect(chunk.length).toBe(2 * MiB);
    expect(await hasher.digest()).toBe(sha256Hex(chunk));
  });

  test("blocks deflate on the same worker while it hashes, each answer for its own request", async () => {
    workers = new DeflateWorkers(1);
    const hasher = workers.hashing.begin();
    const data = jsonRows(6 * MiB, 8);
    const deflated = workers.deflate(data.subarray(0, MiB), true, 2);
    await hasher.update(data);
    expect(await hasher.digest()).toBe(sha256Hex(data));
    expect(Buffer.from(inflateRawSync((await deflated).data)).equals(Buffer.from(data.subarray(0, MiB)))).toBe(true);
  });

  /** The message `hasher` fails with after `bytes` are fed to it and its digest asked for. */
  const failureOf = async (hasher: Sha256Hasher, bytes = 0) => {
    const failed = await (async () => {
      if (bytes) await hasher.update(jsonRows(bytes, 5));
      return hasher.digest();
    })().catch((error: Error) => error);
    return (failed as Error).message;
  };

  test("a worker that ends on its own fails the hash instead of leaving it waiting, and so do later ones", async () => {
    workers = new DeflateWorkers(1, { script: new URL("../../support/exiting.worker.ts", import.meta.url) });
    expect(await failureOf(workers.hashing.begin(), 2 * MiB)).toBe("A deflate worker ended.");
    expect(await failureOf(workers.hashing.begin())).toBe("A deflate worker ended.");
  });

  test("with two workers the hashes take turns between them: the archive's on the first, the database's on the second", async () => {
    workers = new DeflateWorkers(2, { script: new URL("../../support/thread-id-hash.worker.ts", import.meta.url) });
    const hashers = Array.from({ length: 4 }, () => workers!.hashing.begin());
    for (const hasher of hashers) await hasher.update(jsonRows(1000, 1));
    const threads = await Promise.all(hashers.map((hasher) => hasher.digest()));
    expect(threads[0]).not.toBe(threads[1]);
    expect([threads[2], threads[3]]).toEqual([threads[0], threads[1]]);
  });

  test("a worker that ends fails the hashes on the other worker too: the archive cannot be finished without them", async () => {
    workers = new DeflateWorkers(2, { script: new URL("../../support/exiting.worker.ts", import.meta.url) });
    const first = workers.hashing.begin();
    const second = workers.hashing.begin();
    expect(await failureOf(second, 2 * MiB)).toBe("A deflate worker ended.");
    expect(await failureOf(first)).toBe("A deflate worker ended.");
  });
});
