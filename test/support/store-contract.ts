import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { NotFoundError } from "../../src/errors.ts";
import type { BackupStore } from "../../src/store/backup-store.ts";

/**
 * The behaviours every BackupStore keeps, run against each backend (Litestream's RunWithReplicaClient):
 * `makeStore` gives a fresh, empty store for each test.
 */
export function runStoreContract(makeStore: () => Promise<BackupStore>): void {
  const bytes = (n: number, seed = 1) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7) & 0xff;
    return out;
  };
  const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
  const put = async (store: BackupStore, key: string, data: Uint8Array, checkBeforeCommit = true) => {
    const pending = await store.write(key, { checkBeforeCommit });
    const writer = pending.stream.getWriter();
    for (let i = 0; i < data.length; i += 1_000_000) await writer.write(data.subarray(i, i + 1_000_000));
    await writer.close();
    await pending.commit(sha(data));
  };
  const readAll = async (stream: ReadableStream<Uint8Array>) => new Uint8Array(await new Response(stream).arrayBuffer());

  test("an empty store lists nothing", async () => {
    expect(await (await makeStore()).list()).toEqual([]);
  });

  test("write, commit, then stat, list and read give back the bytes and the checksum", async () => {
    const store = await makeStore();
    const data = bytes(3_500_000);
    await put(store, "one.zip", data);
    const info = await store.stat("one.zip");
    expect(info).toMatchObject({ key: "one.zip", size: data.length, sha256: sha(data) });
    expect(info.modified).toBeInstanceOf(Date);
    expect((await store.list()).map((i) => [i.key, i.size])).toEqual([["one.zip", data.length]]);
    expect(sha(await readAll(await store.read("one.zip")))).toBe(sha(data));
    expect(await readAll(await store.read("one.zip", { start: 10, end: 19 }))).toEqual(data.subarray(10, 20));
  });

  test("the stream is done with a chunk once its write resolves: the chunk's memory may be reused then", async () => {
    // What lets the archive writer hand over its blocks from memory it reuses (`zip/lent-bytes.ts`). 12 chunks of
    // 1 MB cross S3 part boundaries (at least 5 MiB) in the middle of a chunk.
    const store = await makeStore();
    const reused = new Uint8Array(1_000_000);
    const expected = new Uint8Array(12 * reused.length);
    const pending = await store.write("reused.zip", { checkBeforeCommit: false });
    const writer = pending.stream.getWriter();
    for (let i = 0; i < 12; i++) {
      reused.set(bytes(reused.length, i + 5));
      expected.set(reused, i * reused.length);
      await writer.write(reused);
    }
    reused.fill(0);
    await writer.close();
    await pending.commit(sha(expected));
    expect(sha(await readAll(await store.read("reused.zip")))).toBe(sha(expected));
  });

  test("random access reads match the stored bytes", async () => {
    const store = await makeStore();
    const data = bytes(2_000_000, 3);
    await put(store, "random.zip", data);
    const source = await store.open("random.zip");
    try {
      expect(source.size).toBe(data.length);
      for (const [offset, length] of [[0, 4], [1_999_990, 100], [123_456, 65_536], [5, 1]] as const) {
        expect(await source.read(offset, length)).toEqual(data.subarray(offset, Math.min(data.length, offset + length)));
      }
      // Given memory to read into, a source may use it (a view of it comes back) or not: the bytes are right either way.
      const into = new Uint8Array(300_000).fill(0xee);
      const read = await source.read(1_800_000, 250_000, into);
      expect(read).toEqual(data.subarray(1_800_000, 2_000_000));
      expect(read.buffer === into.buffer ? read.byteOffset : 0).toBe(0);
    } finally {
      await source.close();
    }
  });

  test("an uncommitted write is not listed, can be read by its id, and abort leaves nothing", async () => {
    const store = await makeStore();
    const pending = await store.write("half.zip");
    const writer = pending.stream.getWriter();
    await writer.write(bytes(1000));
    await writer.close();
    expect(await store.list()).toEqual([]);
    const source = await store.openPending(pending.id);
    expect(await source.read(0, 1000)).toEqual(bytes(1000));
    await source.close();
    await pending.abort();
    expect(await store.list()).toEqual([]);
    await expect(store.stat("half.zip")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.openPending(pending.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  test("a write that needs no check before commit is invisible until its commit, then carries its checksum", async () => {
    const store = await makeStore();
    const data = bytes(3_500_000, 5);
    const pending = await store.write("direct.zip", { checkBeforeCommit: false });
    const writer = pending.stream.getWriter();
    for (let i = 0; i < data.length; i += 1_000_000) await writer.write(data.subarray(i, i + 1_000_000));
    await writer.close();
    expect(await store.list()).toEqual([]);
    await expect(store.stat("direct.zip")).rejects.toBeInstanceOf(NotFoundError);
    await pending.commit(sha(data));
    const info = await store.stat("direct.zip");
    expect(info.size).toBe(data.length);
    expect(info.sha256).toBe(sha(data));
    expect(await readAll(await store.read("direct.zip"))).toEqual(data);
    await store.cleanup();
    expect((await store.stat("direct.zip")).sha256).toBe(sha(data));
  });

  test("a write that needs no check, aborted after its last byte, leaves nothing", async () => {
    const store = await makeStore();
    const pending = await store.write("dropped.zip", { checkBeforeCommit: false });
    const writer = pending.stream.getWriter();
    await writer.write(bytes(1000));
    await writer.close();
    await pending.abort();
    expect(await store.list()).toEqual([]);
    await expect(store.stat("dropped.zip")).rejects.toBeInstanceOf(NotFoundError);
  });

  test("a backup deleted and written again under its name has the new checksum", async () => {
    const store = await makeStore();
    await put(store, "again.zip", bytes(500, 1), false);
    await store.delete("again.zip");
    await put(store, "again.zip", bytes(700, 2));
    expect((await store.stat("again.zip")).sha256).toBe(sha(bytes(700, 2)));
    await store.delete("again.zip");
    await put(store, "again.zip", bytes(900, 3), false);
    expect((await store.stat("again.zip")).sha256).toBe(sha(bytes(900, 3)));
  });

  test("a write aborted mid-stream leaves nothing", async () => {
    const store = await makeStore();
    const pending = await store.write("broken.zip");
    const writer = pending.stream.getWriter();
    await writer.write(bytes(100_000));
    await writer.abort(new Error("source failed"));
    await pending.abort();
    expect(await store.list()).toEqual([]);
  });

  test("missing keys are NotFoundError everywhere, unsafe keys too", async () => {
    const store = await makeStore();
    for (const key of ["missing.zip", "../etc/passwd", ".tmp", "a/b.zip"]) {
      await expect(store.stat(key)).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.read(key)).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.open(key)).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.delete(key)).rejects.toBeInstanceOf(NotFoundError);
    }
    await expect(store.openPending("../../data.db")).rejects.toBeInstanceOf(NotFoundError);
  });

  test("keys with @ and delete", async () => {
    const store = await makeStore();
    await put(store, "@auto_pb_backup_acme_20261123101500.zip", bytes(10));
    expect((await store.list()).map((i) => i.key)).toEqual(["@auto_pb_backup_acme_20261123101500.zip"]);
    await store.delete("@auto_pb_backup_acme_20261123101500.zip");
    expect(await store.list()).toEqual([]);
  });

  test("cleanup keeps committed backups", async () => {
    const store = await makeStore();
    await put(store, "kept.zip", bytes(10));
    await store.cleanup();
    expect((await store.list()).map((i) => i.key)).toEqual(["kept.zip"]);
  });
}
