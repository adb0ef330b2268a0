// WinZip AES-256 (winzip-aes.ts) against independent answers: the keystream block by block with node's own CTR
// mode, an entry that 7-Zip encrypted decrypted here, and one encrypted here decrypted by zip.js.
import { expect, test } from "bun:test";
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader, type FileEntry } from "@zip.js/zip.js";
import { createCipheriv, createHmac, pbkdf2Sync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AES_OVERHEAD, AesEntryDecryptor, AesEntryEncryptor, aesVerifierMatches, deriveAesKeys, WinZipCtr } from "../../../src/archive/zip/index.ts";
import { jsonRows } from "../../support/sample-data.ts";
import { skipWithout7zip } from "../../support/seven-zip.ts";

/** Sizes that cross 16-byte blocks and the 32 KiB keystream batches at every alignment. */
const CUTS = [1, 15, 16, 17, 3, 65_536, 65_535, 4, 100_003, 2, 131_072, 7, 32_768, 32_767, 5, 6];

test("the keys are PBKDF2-HMAC-SHA1 of the UTF-8 password, 1000 rounds: AES key, HMAC key, verifier", async () => {
  const salt = new Uint8Array(16).fill(7);
  const keys = await deriveAesKeys("sésame", salt);
  const expected = pbkdf2Sync(Buffer.from("sésame", "utf8"), salt, 1000, 66, "sha1");
  expect(Buffer.concat([keys.aesKey, keys.hmacKey, keys.verifier]).equals(expected)).toBe(true);
});

test("the keystream is AES-256 of a little-endian counter from 1, whatever the pieces' lengths", async () => {
  const encryptor = await AesEntryEncryptor.create("correct horse");
  const header = encryptor.header();
  expect(header.length).toBe(18);
  const plain = jsonRows(CUTS.reduce((a, b) => a + b, 0));
  // In place, piece by piece, views at odd offsets too: the output must not depend on the input's alignment.
  const cipher = Buffer.from(plain);
  let at = 0;
  for (const cut of CUTS) await encryptor.update(cipher.subarray(at, (at += cut)));
  // Independently: node's CTR mode started at the counter of each block on its own (its big-endian increment
  // never runs within one block, so each block's keystream is AES of that little-endian counter).
  const { aesKey, hmacKey } = await deriveAesKeys("correct horse", header.subarray(0, 16));
  const expected = Buffer.alloc(plain.length);
  for (let block = 0; block * 16 < plain.length; block++) {
    const counter = Buffer.alloc(16);
    counter.writeUInt32LE(block + 1, 0);
    const ctr = createCipheriv("aes-256-ctr", aesKey, counter);
    ctr.update(plain.subarray(block * 16, block * 16 + 16)).copy(expected, block * 16);
  }
  expect(cipher.equals(expected)).toBe(true);
  // The authentication code: the first 10 bytes of HMAC-SHA1 over the ciphertext.
  expect(Buffer.from(await encryptor.final()).equals(createHmac("sha1", hmacKey).update(cipher).digest().subarray(0, 10))).toBe(true);
});

test("the counter carries past 2^32 blocks (a 64 GiB entry) into its next word", () => {
  const key = new Uint8Array(32).fill(3);
  const first = 2 ** 32 - 3000; // the carry falls inside a 32 KiB batch, not at its edge
  const ctr = new WinZipCtr(key, first);
  const data = new Uint8Array(200_000);
  let at = 0;
  for (const cut of [7, 40_000, 33, 100_000, 59_960]) ctr.apply(data.subarray(at, (at += cut)));
  const expected = Buffer.alloc(data.length);
  for (let block = 0; block * 16 < data.length; block++) {
    const counter = Buffer.alloc(16);
    counter.writeBigUInt64LE(BigInt(first + block), 0);
    createCipheriv("aes-256-ecb", key, null).setAutoPadding(false).update(counter).copy(expected, block * 16);
  }
  expect(Buffer.from(data).equals(expected.subarray(0, data.length))).toBe(true);
});

test("each encryptor has its own salt; the decryptor takes the right password only and checks the code", async () => {
  const [a, b] = await Promise.all([AesEntryEncryptor.create("k"), AesEntryEncryptor.create("k")]);
  expect(Buffer.from(a.header()).equals(Buffer.from(b.header()))).toBe(false);
  const plain = jsonRows(200_000, 3);
  const cipher = Uint8Array.from(plain);
  await a.update(cipher);
  expect(Buffer.from(cipher).equals(Buffer.from(plain))).toBe(false);
  const code = await a.final();
  expect(await aesVerifierMatches("k", a.header())).toBe(true);
  expect(await AesEntryDecryptor.create("K", a.header())).toBeUndefined();
  const decryptor = (await AesEntryDecryptor.create("k", a.header()))!;
  const back = Uint8Array.from(cipher);
  await decryptor.update(back);
  expect(Buffer.from(back).equals(Buffer.from(plain))).toBe(true);
  expect(await decryptor.final(code)).toBe(true);
  const altered = Uint8Array.from(cipher);
  altered[1234]! ^= 1;
  const again = (await AesEntryDecryptor.create("k", a.header()))!;
  await again.update(altered);
  expect(await again.final(code)).toBe(false);
});

test.skipIf(skipWithout7zip)("an entry 7-Zip encrypted (AES-256, stored) decrypts here, its authentication code checked", async () => {
  const dir = await mkdtemp(join(tmpdir(), "backstream-aes-"));
  try {
    const plain = jsonRows(300_007, 5); // several keystream batches and a partial block
    await writeFile(join(dir, "data.db"), plain);
    // 7-Zip makes AES zips with ASCII passwords only (it opens UTF-8 ones: encrypted-archive.test.ts).
    const run = Bun.spawnSync(["7zz", "a", "-tzip", "-mx0", "-mem=AES256", "-pcle secrete", join(dir, "a.zip"), join(dir, "data.db")], { stdin: "ignore" });
    expect(run.exitCode).toBe(0);
    const zip = new Uint8Array(await readFile(join(dir, "a.zip")));
    const view = new DataView(zip.buffer);
    expect(view.getUint16(8, true)).toBe(99);
    const start = 30 + view.getUint16(26, true) + view.getUint16(28, true);
    const compressed = view.getUint32(18, true);
    expect(compressed).toBe(plain.length + AES_OVERHEAD);
    const data = zip.subarray(start, start + compressed);
    const decryptor = (await AesEntryDecryptor.create("cle secrete", data.subarray(0, 18)))!;
    expect(decryptor).toBeDefined();
    const out = Buffer.from(data.subarray(18, data.length - 10));
    await decryptor.update(out.subarray(0, 100_000));
    await decryptor.update(out.subarray(100_000));
    expect(out.equals(Buffer.from(plain))).toBe(true);
    expect(await decryptor.final(data.subarray(data.length - 10))).toBe(true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("an entry encrypted here, laid out by hand as a stored AE-2 zip entry, is read by zip.js with the password", async () => {
  const plain = jsonRows(150_001, 9);
  const encryptor = await AesEntryEncryptor.create("pw");
  const body = Uint8Array.from(plain);
  await encryptor.update(body.subarray(0, 77_777));
  await encryptor.update(body.subarray(77_777));
  const data = Buffer.concat([encryptor.header(), body, await encryptor.final()]);
  const name = Buffer.from("data.db");
  const extra = Buffer.from([0x01, 0x99, 7, 0, 2, 0, 0x41, 0x45, 3, 0, 0]);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(51, 4);
  local.writeUInt16LE(0x0801, 6);
  local.writeUInt16LE(99, 8);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(plain.length, 22);
  local.writeUInt16LE(name.length, 26);
  local.writeUInt16LE(extra.length, 28);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(51, 4);
  central.writeUInt16LE(51, 6);
  central.writeUInt16LE(0x0801, 8);
  central.writeUInt16LE(99, 10);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(plain.length, 24);
  central.writeUInt16LE(name.length, 28);
  central.writeUInt16LE(extra.length, 30);
  const cdOffset = local.length + name.length + extra.length + data.length;
  const cd = Buffer.concat([central, name, extra]);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  const zip = Buffer.concat([local, name, extra, data, cd, end]);
  const reader = new ZipReader(new Uint8ArrayReader(new Uint8Array(zip)), { useWebWorkers: false });
  const [entry] = (await reader.getEntries()) as FileEntry[];
  const out = await entry!.getData(new Uint8ArrayWriter(), { password: "pw" });
  expect(Buffer.from(out).equals(Buffer.from(plain))).toBe(true);
  await expect(entry!.getData(new Uint8ArrayWriter(), { password: "not pw" })).rejects.toThrow();
  await reader.close();
});
