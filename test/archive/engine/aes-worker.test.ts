// The AES worker (aes-worker.ts) on a real thread against the same ciphers on this one: pieces sent without
// waiting for the ones before, larger than a slot, of any length, several entries interleaved, and a thread
// that dies or is closed failing what it held instead of leaving it waiting.
import { afterEach, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { AesWorker, WorkerPoolError } from "../../../src/archive/engine/index.ts";
import { inlineEntryCiphers, type AesCipherKeys } from "../../../src/archive/zip/index.ts";
import { jsonRows } from "../../support/sample-data.ts";

const MiB = 1024 * 1024;
const keysOf = (): AesCipherKeys => ({ aesKey: randomBytes(32), hmacKey: randomBytes(32) });
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
/** Cuts that cross the 1 MiB slots, the 16-byte blocks and the 32 KiB keystream batches. */
const CUTS = [1, MiB + 5, 17, 3 * MiB, 65_535, 0, 2 * MiB - 1, 31];

let worker: AesWorker | undefined;
afterEach(() => {
  worker?.close();
  worker = undefined;
});

/** `data` through `cipher` cut at CUTS, every piece sent before any is awaited; the code at the end. */
async function applyInPieces(cipher: { update(d: Uint8Array): Promise<void>; final(): Promise<Uint8Array> }, data: Uint8Array) {
  const pieces: Promise<void>[] = [];
  let at = 0;
  for (const cut of CUTS) pieces.push(cipher.update(data.subarray(at, (at += cut))));
  pieces.push(cipher.update(data.subarray(at)));
  const code = cipher.final();
  await Promise.all(pieces);
  return code;
}

test("entries encrypted on the thread, pieces in flight and interleaved, match this thread's ciphertext and codes", async () => {
  worker = new AesWorker();
  const size = CUTS.reduce((a, b) => a + b, 0) + 12_345;
  const entries = [jsonRows(size, 1), jsonRows(size, 2)].map((plain) => ({ plain, keys: keysOf() }));
  const here = await Promise.all(entries.map(async ({ plain, keys }) => {
    const data = Uint8Array.from(plain);
    return { data, code: await applyInPieces(inlineEntryCiphers(keys, "encrypt"), data) };
  }));
  // Both entries' pieces go to the thread side by side.
  const there = entries.map(({ plain, keys }) => ({ data: Uint8Array.from(plain), cipher: worker!.open(keys, "encrypt") }));
  const codes = await Promise.all(there.map(({ data, cipher }) => applyInPieces(cipher, data)));
  for (const [i, { data, code }] of here.entries()) {
    expect(same(data, entries[i]!.plain)).toBe(false);
    expect(same(there[i]!.data, data)).toBe(true);
    expect(same(codes[i]!, code)).toBe(true);
  }
});

test("decrypting on the thread gives back the plaintext and the code of the ciphertext", async () => {
  worker = new AesWorker();
  const keys = keysOf();
  const plain = jsonRows(3 * MiB + 77, 4);
  const cipherText = Uint8Array.from(plain);
  const written = await applyInPieces(inlineEntryCiphers(keys, "encrypt"), cipherText);
  const back = Uint8Array.from(cipherText);
  const read = await applyInPieces(worker.open(keys, "decrypt"), back);
  expect(same(back, plain)).toBe(true);
  expect(same(read, written)).toBe(true);
});

test("a thread that ends on its own fails the pieces it held instead of leaving them waiting", async () => {
  worker = new AesWorker(new URL("../../support/exiting.worker.ts", import.meta.url));
  const cipher = worker.open(keysOf(), "encrypt");
  const failures = await Promise.all([cipher.update(new Uint8Array(2 * MiB)), cipher.final()].map((p) => p.catch((error: Error) => error)));
  for (const failure of failures) {
    expect(failure).toBeInstanceOf(WorkerPoolError);
    expect((failure as Error).message).toBe("The AES worker ended.");
  }
});

test("once closed, pieces in flight and new ones fail instead of hanging", async () => {
  worker = new AesWorker();
  const cipher = worker.open(keysOf(), "encrypt");
  const inFlight = cipher.update(new Uint8Array(8 * MiB));
  worker.close();
  const failures = await Promise.all([inFlight, cipher.update(new Uint8Array(10)), worker.open(keysOf(), "decrypt").final()].map((p) => p.catch((error: Error) => error)));
  for (const failure of failures) expect((failure as Error).message).toContain("closed");
});
