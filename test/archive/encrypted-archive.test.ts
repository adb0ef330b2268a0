// Archives encrypted with WinZip AES-256 (writeArchive's `password`): their headers, 7-Zip and zip.js opening them,
// readArchive and verifyArchive with the key, without it, with another, and damaged; the rules for other
// encryption; reuse turned off; and mutants of an encrypted archive read with the key.
import { beforeAll, describe, expect, test } from "bun:test";
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader, ZipWriter, type FileEntry } from "@zip.js/zip.js";
import fc from "fast-check";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ArchiveSource,
  MANIFEST_PATH,
  NO_KEY_PROBLEM,
  readArchive,
  verifyArchive,
  writeArchive,
  WRONG_KEY_PROBLEM,
  type WriteArchiveOptions,
} from "../../src/archive/index.ts";
import { parallelDeflaters } from "../../src/archive/engine/index.ts";
import { ReusablePieces } from "../../src/archive/reuse/index.ts";
import { ZipStreamWriter } from "../../src/archive/zip/index.ts";
import { EncryptedBackupError, InvalidBackupError } from "../../src/errors.ts";
import { entryDataOffset, entryHeaderOffset, sha256Hex } from "../support/archives.ts";
import { jsonRows } from "../support/sample-data.ts";
import { applyMutations, mutationsArbitrary } from "../support/zip-mutants.ts";
import { skipWithout7zip } from "../support/seven-zip.ts";

const MiB = 1024 * 1024;
const KEY = "sésame, ouvre-toi";

const FILES: [string, Uint8Array][] = [
  ["data.db", jsonRows(5 * MiB + 333)], // six deflate blocks
  ["storage/a/photo.jpg", crypto.getRandomValues(new Uint8Array(70_000))], // stored
  ["storage/a/notes.txt", jsonRows(40_000, 3)],
  ["storage/a/empty.txt", new Uint8Array(0)],
  ["storage/a/one.txt", new Uint8Array([42])],
];

function source(path: string, bytes: Uint8Array): ArchiveSource {
  return { path, size: bytes.length, lastModified: new Date(2024, 4, 6, 7, 8, 10), open: async () => new Blob([bytes as BlobPart]).stream() };
}

async function write(options: Partial<WriteArchiveOptions> = {}, files = FILES) {
  const chunks: Uint8Array[] = [];
  const written = await writeArchive(files.map(([p, b]) => source(p, b)), new WritableStream({ write: (c) => void chunks.push(c.slice()) }), { producer: "test", ...options });
  return { zip: new Uint8Array(Buffer.concat(chunks)), written };
}

const reader = (zip: Uint8Array) => ({ size: zip.length, read: async (o: number, l: number) => zip.slice(o, o + l) });

/** readArchive with a sink that keeps every entry's bytes. */
async function extract(zip: Uint8Array, password?: string) {
  const files = new Map<string, Uint8Array[]>();
  const report = await readArchive(reader(zip), {
    ...(password !== undefined ? { password } : {}),
    sink: async (path) => {
      const chunks: Uint8Array[] = [];
      files.set(path, chunks);
      return new WritableStream({ write: (c) => void chunks.push(c.slice()) });
    },
  });
  return { report, files: new Map([...files].map(([p, c]) => [p, new Uint8Array(Buffer.concat(c))])) };
}

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

/** Every local header and central record of a zip: offset, flags, method, CRC, compressed size, extra field. */
function records(zip: Uint8Array) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const found: { kind: "local" | "central"; name: string; flags: number; method: number; crc: number; extra: Uint8Array }[] = [];
  for (let at = 0; at + 46 <= zip.length; at++) {
    const signature = view.getUint32(at, true);
    if (signature === 0x04034b50) {
      const n = view.getUint16(at + 26, true);
      const e = view.getUint16(at + 28, true);
      found.push({ kind: "local", name: Buffer.from(zip.subarray(at + 30, at + 30 + n)).toString(), flags: view.getUint16(at + 6, true), method: view.getUint16(at + 8, true), crc: view.getUint32(at + 14, true), extra: zip.subarray(at + 30 + n, at + 30 + n + e) });
    } else if (signature === 0x02014b50) {
      const n = view.getUint16(at + 28, true);
      const e = view.getUint16(at + 30, true);
      found.push({ kind: "central", name: Buffer.from(zip.subarray(at + 46, at + 46 + n)).toString(), flags: view.getUint16(at + 8, true), method: view.getUint16(at + 10, true), crc: view.getUint32(at + 16, true), extra: zip.subarray(at + 46 + n, at + 46 + n + e) });
    }
  }
  return found;
}

async function withDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "backstream-aes-"));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** 7-Zip, stdin closed so that it never waits for a password. */
const sevenZip = (...args: string[]) => Bun.spawnSync(["7zz", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });

let plain: Awaited<ReturnType<typeof write>>;
let sealed: Awaited<ReturnType<typeof write>>;
beforeAll(async () => {
  [plain, sealed] = await Promise.all([write(), write({ password: KEY })]);
});

describe("writing with a password", () => {
  test("every entry, the manifest too, is AE-2: method 99, bit 0 set beside bits 3 and 11, extra 0x9901, CRC-32 0", () => {
    const found = records(sealed.zip);
    const names = [...FILES.map(([p]) => p), MANIFEST_PATH];
    expect(found.filter((r) => r.kind === "local").map((r) => r.name)).toEqual(names);
    expect(found.filter((r) => r.kind === "central").map((r) => r.name)).toEqual(names);
    for (const record of found) {
      expect(record.method).toBe(99);
      expect(record.flags).toBe(0x0809);
      expect(record.crc).toBe(0);
      const actual = record.name === "storage/a/photo.jpg" ? 0 : 8;
      expect([...record.extra]).toEqual([0x01, 0x99, 7, 0, 2, 0, 0x41, 0x45, 3, actual, 0]);
    }
    // The manifest's header says so too, at the offset its central record gives.
    const at = entryHeaderOffset(sealed.zip, MANIFEST_PATH);
    expect(new DataView(sealed.zip.buffer).getUint16(at + 8, true)).toBe(99);
    // Its plaintext is nowhere in the archive.
    expect(Buffer.from(sealed.zip).includes(Buffer.from('"sha256"'))).toBe(false);
    expect(Buffer.from(sealed.zip).includes(Buffer.from('{"id":0,"name":"row 0"'))).toBe(false);
  });

  test("the manifest keeps the plaintext's SHA-256s; the archive's SHA-256 is of the bytes written; reuse is reported skipped", () => {
    expect(sealed.written.manifest.entries.map((e) => [e.path, e.size, e.sha256])).toEqual(FILES.map(([p, b]) => [p, b.length, sha256Hex(b)]));
    expect(sealed.written.sha256).toBe(sha256Hex(sealed.zip));
    expect(sealed.written.size).toBe(sealed.zip.length);
    expect(sealed.written.reuse).toEqual({ deflatedBytes: expect.any(Number), reusedBytes: 0, skipped: "encrypted" });
    expect(plain.written.reuse.skipped).toBeUndefined();
    // Salt, verifier and authentication code: 28 bytes more per entry (plus the 11-byte extra field twice).
    const entries = FILES.length + 1;
    expect(sealed.zip.length - plain.zip.length).toBeGreaterThan(entries * (28 + 22) - 200);
  });

  test.skipIf(skipWithout7zip)("an entry announced as over 4 GiB gets its zip64 fields beside the AES ones, and still opens", async () => {
    const chunks: Uint8Array[] = [];
    const zip = new ZipStreamWriter(async (data) => void chunks.push(data.slice()), { deflater: parallelDeflaters(), password: KEY });
    const db = jsonRows(200_000);
    await zip.addEntry("data.db", (async function* () { yield db; })(), { level: 2, lastModified: new Date(), sizeHint: 5 * 1024 ** 3 });
    await zip.addEntry("storage/x.jpg", (async function* () { yield new Uint8Array(1000); })(), { level: 0, lastModified: new Date(), sizeHint: 1000 });
    await zip.close();
    const bytes = new Uint8Array(Buffer.concat(chunks));
    const [local] = records(bytes);
    expect([...local!.extra.subarray(0, 4), ...local!.extra.subarray(20)]).toEqual([1, 0, 16, 0, 0x01, 0x99, 7, 0, 2, 0, 0x41, 0x45, 3, 8, 0]);
    await withDir(async (dir) => {
      await writeFile(join(dir, "a.zip"), bytes);
      expect(sevenZip("t", `-p${KEY}`, join(dir, "a.zip")).exitCode).toBe(0);
    });
    const report = await readArchive(reader(bytes), { password: KEY });
    expect({ entries: report.entries, bytes: report.bytes }).toEqual({ entries: 2, bytes: 201_000 });
  });

  test("an empty password is refused: no reader here could open the archive", async () => {
    expect((await rejection(write({ password: "" }))).message).toContain("password");
  });

  test.skipIf(skipWithout7zip)("7-Zip tests and extracts it byte for byte with the key, and extracts nothing readable without it", async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, "a.zip"), sealed.zip);
      const tested = sevenZip("t", `-p${KEY}`, join(dir, "a.zip"));
      expect(tested.exitCode).toBe(0);
      expect(tested.stdout.toString()).toContain("Everything is Ok");
      expect(sevenZip("x", `-p${KEY}`, "-y", `-o${join(dir, "out")}`, join(dir, "a.zip")).exitCode).toBe(0);
      for (const [path, bytes] of FILES) expect(Buffer.from(await readFile(join(dir, "out", path))).equals(Buffer.from(bytes))).toBe(true);
      const manifest = JSON.parse(await readFile(join(dir, "out", MANIFEST_PATH), "utf8"));
      expect(manifest.entries.map((e: { sha256: string }) => e.sha256)).toEqual(FILES.map(([, b]) => sha256Hex(b)));
      const wrong = sevenZip("x", "-pwrong", "-y", `-o${join(dir, "wrong")}`, join(dir, "a.zip"));
      expect(wrong.exitCode).not.toBe(0);
      expect(wrong.stdout.toString() + wrong.stderr.toString()).toContain("Wrong password");
      const db = join(dir, "wrong", "data.db");
      // 7-Zip may leave an empty file behind; never the data.
      if (existsSync(db)) expect((await readFile(db)).length).toBe(0);
    });
  });

  test("zip.js (ZipReader with the password) reads every entry byte for byte; without it, it refuses", async () => {
    const zip = new ZipReader(new Uint8ArrayReader(sealed.zip), { useWebWorkers: false, password: KEY });
    const entries = (await zip.getEntries()) as FileEntry[];
    for (const [path, bytes] of FILES) {
      const entry = entries.find((e) => e.filename === path)!;
      expect(entry.encrypted).toBe(true);
      expect(Buffer.from(await entry.getData(new Uint8ArrayWriter())).equals(Buffer.from(bytes))).toBe(true);
    }
    await expect(entries[0]!.getData(new Uint8ArrayWriter(), { password: "wrong" })).rejects.toThrow();
    await zip.close();
  });
});

describe("reading with a password", () => {
  test("readArchive and verifyArchive with the key give the same files, sizes and SHA-256s as the plain archive", async () => {
    const [fromSealed, fromPlain] = await Promise.all([extract(sealed.zip, KEY), extract(plain.zip)]);
    expect(fromSealed.report.paths).toEqual(fromPlain.report.paths);
    expect(fromSealed.report.bytes).toBe(fromPlain.report.bytes);
    expect(fromSealed.report.manifest?.entries()).toEqual(fromPlain.report.manifest?.entries());
    for (const [path, bytes] of FILES) expect(Buffer.from(fromSealed.files.get(path)!).equals(Buffer.from(bytes))).toBe(true);
    const verified = await verifyArchive(reader(sealed.zip), { password: KEY, expectedSha256: sealed.written.sha256 });
    expect({ ok: verified.ok, problems: verified.problems, entries: verified.entries }).toEqual({ ok: true, problems: [], entries: FILES.length });
    expect(verified.intact.sort()).toEqual(FILES.map(([p]) => p).sort());
    expect(verified.sha256).toBe(sealed.written.sha256);
  });

  test("decrypting in place never changes a source's memory unless its reads are the reader's own", async () => {
    // A source that hands out views of what it holds (as the S3 store's range cache does) must keep its bytes.
    const held = sealed.zip.slice();
    const views = { size: held.length, read: async (o: number, l: number) => held.subarray(o, o + l) };
    for (let round = 0; round < 2; round++) {
      const verified = await verifyArchive(views, { password: KEY, expectedSha256: sealed.written.sha256 });
      expect({ ok: verified.ok, problems: verified.problems }).toEqual({ ok: true, problems: [] });
    }
    expect(Buffer.from(held).equals(Buffer.from(sealed.zip))).toBe(true);
    // One whose reads are fresh copies says so, and is decrypted where it lies, to the same files.
    const fresh = { ...reader(sealed.zip), freshReads: true };
    const files = new Map<string, Uint8Array[]>();
    await readArchive(fresh, { password: KEY, sink: async (path) => new WritableStream({ write: (c) => void (files.get(path) ?? files.set(path, []).get(path)!).push(c.slice()) }) });
    for (const [path, bytes] of FILES) expect(Buffer.concat(files.get(path) ?? []).equals(Buffer.from(bytes))).toBe(true);
  });

  test("a plain archive read with a key is read as before", async () => {
    const { report } = await extract(plain.zip, KEY);
    expect(report.entries).toBe(FILES.length);
  });

  test("without a key, or with another, both refuse with their own words and class, before any entry reaches the sink", async () => {
    for (const password of [undefined, "", "not the key"]) {
      const expected = password ? WRONG_KEY_PROBLEM : NO_KEY_PROBLEM;
      const sunk: string[] = [];
      const read = await rejection(readArchive(reader(sealed.zip), { ...(password !== undefined ? { password } : {}), sink: async (p) => (sunk.push(p), new WritableStream()) }));
      expect(read).toBeInstanceOf(EncryptedBackupError);
      expect(read).toBeInstanceOf(InvalidBackupError); // an upload or a restore refuses it with its message
      expect(read.message).toBe(expected);
      expect(sunk).toEqual([]);
      const verified = await rejection(verifyArchive(reader(sealed.zip), password !== undefined ? { password } : {}));
      expect(verified).toBeInstanceOf(EncryptedBackupError);
      expect(verified.message).toBe(expected);
    }
    expect(NO_KEY_PROBLEM).toBe("The backup is encrypted and no key is configured to open it.");
    expect(WRONG_KEY_PROBLEM).toBe("The backup is encrypted and the configured key does not open it.");
  });

  test("a flipped byte in an entry's ciphertext, deflated or stored, is a corrupt entry, not a key problem", async () => {
    for (const [path, into] of [["data.db", 100_000], ["storage/a/photo.jpg", 30_000], ["storage/a/notes.txt", 18]] as const) {
      const damaged = Uint8Array.from(sealed.zip);
      damaged[entryDataOffset(damaged, path) + into]! ^= 0x10;
      const read = await rejection(extract(damaged, KEY));
      expect(read).toBeInstanceOf(InvalidBackupError);
      expect(read).not.toBeInstanceOf(EncryptedBackupError);
      expect(read.message).toContain(`The entry ${path} is corrupt`);
      const verified = await verifyArchive(reader(damaged), { password: KEY });
      expect(verified.ok).toBe(false);
      expect(verified.problems).toEqual([expect.stringContaining(`The entry ${path} is corrupt`)]);
    }
  });

  test("entries of several 4 MiB reads, each decrypted across the AES worker's slots, come back whole; a byte flipped in a later read is refused", async () => {
    // Over 4 MiB of ciphertext each: several reads per entry, decrypted on the AES worker one after the other.
    const big: [string, Uint8Array][] = [
      ["data.db", crypto.getRandomValues(new Uint8Array(9 * MiB + 5))], // deflated blocks, about its own size compressed
      ["storage/a/photo.jpg", crypto.getRandomValues(new Uint8Array(10 * MiB + 3))], // stored
    ];
    const { zip } = await write({ password: KEY }, big);
    const { files } = await extract(zip, KEY);
    for (const [path, bytes] of big) expect(Buffer.from(files.get(path)!).equals(Buffer.from(bytes))).toBe(true);
    for (const [path] of big) {
      const damaged = Uint8Array.from(zip);
      damaged[entryDataOffset(damaged, path) + 9 * MiB]! ^= 0x01; // in the third read
      const read = await rejection(extract(damaged, KEY));
      expect(read).toBeInstanceOf(InvalidBackupError);
      expect(read.message).toContain(`The entry ${path} is corrupt`);
    }
  });

  test("one entry's altered password verifier is that entry's corruption: the others take the key", async () => {
    const damaged = Uint8Array.from(sealed.zip);
    damaged[entryDataOffset(damaged, "data.db") + 16]! ^= 0xff;
    const read = await rejection(extract(damaged, KEY));
    expect(read).not.toBeInstanceOf(EncryptedBackupError);
    expect(read.message).toBe("The entry data.db is corrupt: its password verifier does not match the archive's key.");
  });

  test.skipIf(skipWithout7zip)("another tool's AES-256 archive (7-Zip, no manifest) is read with the key and refused without it", async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, "data.db"), FILES[0]![1]);
      expect(sevenZip("a", "-tzip", "-mem=AES256", "-pplain ascii key", join(dir, "a.zip"), join(dir, "data.db")).exitCode).toBe(0);
      const zip = new Uint8Array(await readFile(join(dir, "a.zip")));
      const { files } = await extract(zip, "plain ascii key");
      expect(sha256Hex(files.get("data.db")!)).toBe(sha256Hex(FILES[0]![1]));
      expect((await rejection(extract(zip))).message).toBe(NO_KEY_PROBLEM);
      expect((await rejection(extract(zip, "another"))).message).toBe(WRONG_KEY_PROBLEM);
    });
  });
});

describe("the other encryption rules", () => {
  /** A zip made by zip.js, each entry with its own options. */
  async function zipJs(entries: [string, Uint8Array, Record<string, unknown>][]): Promise<Uint8Array> {
    const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
    for (const [path, data, options] of entries) await zip.add(path, new Uint8ArrayReader(data), options);
    return zip.close();
  }
  const db = jsonRows(50_000);

  test("an archive that mixes encrypted and plain entries is refused, with the key or without", async () => {
    const mixed = await zipJs([["data.db", db, { password: KEY, encryptionStrength: 3 }], ["storage/x.txt", db, {}]]);
    for (const password of [KEY, undefined]) {
      const error = await rejection(extract(mixed, password));
      expect(error).toBeInstanceOf(InvalidBackupError);
      expect(error).not.toBeInstanceOf(EncryptedBackupError);
      expect(error.message).toContain("mixes encrypted and plain entries");
    }
    // A zip.js archive all AES-256 is read with the key.
    const whole = await zipJs([["data.db", db, { password: KEY, encryptionStrength: 3 }], ["storage/x.txt", db, { password: KEY, encryptionStrength: 3 }]]);
    expect((await extract(whole, KEY)).report.entries).toBe(2);
  });

  test("ZipCrypto and AES-128 or -192 entries stay refused, with the key too", async () => {
    for (const options of [{ zipCrypto: true }, { encryptionStrength: 1 }, { encryptionStrength: 2 }]) {
      const zip = await zipJs([["data.db", db, { password: KEY, ...options }]]);
      const error = await rejection(extract(zip, KEY));
      expect(error).not.toBeInstanceOf(EncryptedBackupError);
      expect(error.message).toBe('The entry "data.db" is encrypted.');
    }
  });
});

test("an encrypted archive neither reads an earlier archive's pieces nor lists its own", async () => {
  const earlier = await write({ indexBlocks: true });
  if (!earlier.written.pieces) return; // a deflater that does not fingerprint (zlib): nothing to reuse anyway
  let reads = 0;
  const counting = { size: earlier.zip.length, read: async (o: number, l: number) => (reads++, earlier.zip.slice(o, o + l)) };
  const pieces = () => new ReusablePieces({ key: "earlier.zip", archiveSize: earlier.written.size, archiveSha256: earlier.written.sha256, level: 2, ...earlier.written.pieces! }, counting);
  const again = await write({ indexBlocks: true, reuse: pieces() });
  expect(reads).toBeGreaterThan(0); // the same data, plain: reused (so the counting would see it)
  expect(again.written.reuse.reusedBytes).toBeGreaterThan(0);
  reads = 0;
  const encrypted = await write({ indexBlocks: true, reuse: pieces(), password: KEY });
  expect(reads).toBe(0);
  expect(encrypted.written.reuse).toEqual({ deflatedBytes: expect.any(Number), reusedBytes: 0, skipped: "encrypted" });
  expect(encrypted.written.pieces).toBeUndefined();
  expect((await extract(encrypted.zip, KEY)).report.entries).toBe(FILES.length);
});

test("mutants of an encrypted archive read with the key: each refused cleanly, or read as exactly its files", async () => {
  const small = await write({ password: KEY }, [["data.db", jsonRows(1.5 * MiB, 4)], ["storage/notes.txt", jsonRows(9_000, 2)], ["storage/photo.jpg", crypto.getRandomValues(new Uint8Array(5_000))]]);
  const expected = new Map(small.written.manifest.entries.map((e) => [e.path, e.sha256]));
  const outcomes = { refused: 0, accepted: 0 };
  await fc.assert(
    fc.asyncProperty(mutationsArbitrary, async (mutations) => {
      const mutant = applyMutations(small.zip, mutations);
      let files: Map<string, Uint8Array>;
      try {
        ({ files } = await extract(mutant, KEY));
      } catch (error) {
        if (!(error instanceof InvalidBackupError)) throw error;
        outcomes.refused++;
        return;
      }
      // Whatever was accepted is every file of the archive, byte for byte (the manifest's SHA-256s are checked).
      expect(new Map([...files].map(([p, b]) => [p, sha256Hex(b)]))).toEqual(expected);
      outcomes.accepted++;
    }),
    { seed: 20261207, numRuns: 40 },
  );
  expect(outcomes.refused).toBeGreaterThan(20);
});
