import { afterEach, describe, expect, test } from "bun:test";
import { constants, deflateRawSync } from "node:zlib";
import { CorruptBlockError, hasherFor, inflateBlocks, InflateWorkers, WorkerPoolError, type Hashing } from "../../../src/archive/engine/index.ts";
import { isFaultOutsideArchive } from "../../../src/archive/index.ts";
import { sha256Hex } from "../../support/archives.ts";
import { isalRequired } from "../../support/isal.ts";
import { jsonRows } from "../../support/sample-data.ts";

const MiB = 1024 * 1024;
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
/** `data` cut into blocks of `blockSize` deflated on their own, each but the last ending on a sync flush, as our writer does. */
function deflatedBlocks(data: Uint8Array, blockSize: number) {
  const compressed: Uint8Array[] = [];
  for (let at = 0; at <= data.length; at += blockSize) {
    const last = at + blockSize > data.length;
    compressed.push(deflateRawSync(data.subarray(at, at + blockSize), { level: 1, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH }));
  }
  const bytes = new Uint8Array(Buffer.concat(compressed));
  return { bytes, blocks: { blockSize, compressedSizes: compressed.map((c) => c.length) } };
}
const reader = (bytes: Uint8Array) => async (offset: number, length: number) => bytes.slice(offset, offset + length);

let workers: InflateWorkers | undefined;
afterEach(() => {
  workers?.close();
  workers = undefined;
});

describe("InflateWorkers", () => {
  test("blocks inflate into lent memory, with ISA-L where it loads; more blocks than slots wait, in turn, for one", async () => {
    workers = new InflateWorkers(2, { slots: 3 });
    const inputs = Array.from({ length: 10 }, (_, i) => jsonRows(MiB, i * 1000));
    // All asked for at once: three get slots, the rest wait until a block is released.
    const inflating = inputs.map((input) => workers!.inflate(deflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH }), MiB));
    const lent: Uint8Array[] = [];
    for (const [i, pending] of inflating.entries()) {
      const block = await pending;
      expect(same(block.data, inputs[i]!)).toBe(true);
      lent.push(block.data);
      block.release();
    }
    // The same shared memory for every block, and each block from the fourth on in the slot of the one three
    // before it: it waited for that release, as the first of those waiting.
    for (const data of lent) expect(data.buffer).toBe(lent[0]!.buffer);
    for (let i = 3; i < lent.length; i++) expect(lent[i]!.byteOffset).toBe(lent[i - 3]!.byteOffset);
    if (isalRequired) expect(workers.inflaterUsed).toBe("isa-l");
  });

  test("a corrupt block or the wrong size fails with CorruptBlockError, and its slot comes back", async () => {
    workers = new InflateWorkers(1, { slots: 1 });
    const input = jsonRows(200_000);
    const compressed = deflateRawSync(input);
    for (const [bytes, size] of [[compressed.subarray(0, 1000), input.length], [compressed, input.length - 1], [compressed, input.length + 1], [new Uint8Array([0xff, 0xff]), 10]] as const) {
      expect(await workers.inflate(bytes, size).catch((error) => error)).toBeInstanceOf(CorruptBlockError);
    }
    // With one slot, this waits forever if a failure kept it.
    expect(same((await workers.inflate(compressed, input.length)).data, input)).toBe(true);
  });

  test("node:zlib in the workers, when told to leave ISA-L alone, gives the same bytes", async () => {
    workers = new InflateWorkers(1, { inflater: "zlib" });
    const input = jsonRows(MiB, 7);
    const block = await workers.inflate(deflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH }), MiB);
    expect(same(block.data, input)).toBe(true);
    expect(workers.inflaterUsed).toBe("zlib");
  });

  test("a worker that ends on its own fails the blocks it held instead of leaving them waiting", async () => {
    workers = new InflateWorkers(1, { script: new URL("../../support/exiting.worker.ts", import.meta.url) });
    const failure = await workers.inflate(deflateRawSync(jsonRows(1000)), 1000).catch((error: Error) => error);
    expect(failure).not.toBeInstanceOf(CorruptBlockError); // the archive is not to blame
    expect(failure).toBeInstanceOf(WorkerPoolError); // and a restore or verify passes it on as it is
    expect(isFaultOutsideArchive(failure)).toBe(true);
    expect((failure as Error).message).toBe("An inflate worker ended.");
  });

  test("once closed, blocks in flight and new ones fail instead of hanging", async () => {
    workers = new InflateWorkers(1);
    const compressed = deflateRawSync(jsonRows(MiB));
    const inFlight = workers.inflate(compressed, MiB);
    workers.close();
    const failures = await Promise.all([inFlight, workers.inflate(compressed, MiB)].map((p) => p.catch((error: Error) => error)));
    for (const failure of failures) expect((failure as Error).message).toContain("closed");
  });
});

describe("hashing on the inflate workers", () => {
  test("entries' bytes hash there as node:crypto would, while blocks inflate on the same workers", async () => {
    workers = new InflateWorkers(2);
    const entries = [jsonRows(5 * MiB + 3, 1), jsonRows(3 * MiB, 2)];
    const hashers = entries.map(() => workers!.hashing.begin());
    const block = jsonRows(MiB, 3);
    for (let at = 0; at < 5 * MiB + 3; at += 700_000) {
      const inflating = workers.inflate(deflateRawSync(block, { finishFlush: constants.Z_SYNC_FLUSH }), MiB);
      for (const [i, bytes] of entries.entries()) await hashers[i]!.update(bytes.subarray(at, at + 700_000));
      const inflated = await inflating;
      expect(same(inflated.data, block)).toBe(true);
      inflated.release();
    }
    expect(await Promise.all(hashers.map((hasher) => hasher.digest()))).toEqual(entries.map(sha256Hex));
  });

  test("a worker that ends fails the hash on it instead of leaving it waiting", async () => {
    workers = new InflateWorkers(1, { script: new URL("../../support/exiting.worker.ts", import.meta.url) });
    const hasher = workers.hashing.begin();
    const failure = await (async () => {
      await hasher.update(jsonRows(2 * MiB, 4));
      return hasher.digest();
    })().catch((error: Error) => error);
    expect((failure as Error).message).toBe("An inflate worker ended.");
  });

  test("hasherFor: a stream under a MiB is hashed on this thread, a larger one where it is offered", async () => {
    let begun = 0;
    const elsewhere: Hashing = {
      begin: () => {
        begun++;
        return { update: async () => {}, digest: async () => "elsewhere" };
      },
    };
    const small = hasherFor(elsewhere, MiB - 1);
    await small.update(jsonRows(1000, 5));
    expect(await small.digest()).toBe(sha256Hex(jsonRows(1000, 5)));
    expect(begun).toBe(0);
    expect(await hasherFor(elsewhere, MiB).digest()).toBe("elsewhere");
    expect(begun).toBe(1);
  });
});

describe("inflateBlocks on the workers", () => {
  /** The entry inflated through `inflateBlocks` on the workers, copied chunk by chunk. */
  const inflateEntry = async (data: Uint8Array) => {
    const { bytes, blocks } = deflatedBlocks(data, 256 * 1024);
    const chunks: Uint8Array[] = [];
    for await (const chunk of inflateBlocks(reader(bytes), blocks, data.length, "x", workers)) chunks.push(chunk.slice());
    return new Uint8Array(Buffer.concat(chunks));
  };

  test("fewer slots than the blocks an entry keeps in flight: the later ones wait for the earlier to be released", async () => {
    // Four blocks asked for at once, two slots: the first two must be yielded and released for the rest to start.
    workers = new InflateWorkers(1, { slots: 2 });
    const data = jsonRows(10 * 256 * 1024, 3);
    expect(same(await inflateEntry(data), data)).toBe(true);
  });

  test("entries inflating side by side share fewer slots than they would hold, and all come back whole", async () => {
    workers = new InflateWorkers(2, { slots: 5 });
    const entries = Array.from({ length: 3 }, (_, i) => jsonRows(12 * 256 * 1024 + 1000 * i, i * 50_000));
    const outputs = await Promise.all(entries.map(inflateEntry));
    for (const [i, output] of outputs.entries()) expect(same(output, entries[i]!)).toBe(true);
  });

  test("an entry left half read gives its slots back", async () => {
    workers = new InflateWorkers(1, { slots: 4 });
    const data = jsonRows(8 * 256 * 1024, 11);
    const { bytes, blocks } = deflatedBlocks(data, 256 * 1024);
    const entry = inflateBlocks(reader(bytes), blocks, data.length, "x", workers);
    expect(same((await entry.next()).value as Uint8Array, data.subarray(0, 256 * 1024))).toBe(true);
    await entry.next(); // four blocks in flight or lent: every slot
    await entry.return(undefined);
    // Four slots: reading another whole entry hangs if the one left half read kept any.
    const chunks: Uint8Array[] = [];
    for await (const chunk of inflateBlocks(reader(bytes), blocks, data.length, "x", workers)) chunks.push(chunk.slice());
    expect(same(new Uint8Array(Buffer.concat(chunks)), data)).toBe(true);
  });
});
