import { expect, test } from "bun:test";
import { readArchive } from "../../../src/archive/index.ts";
import { CentralDirectory, type CentralRecord } from "../../../src/archive/zip/central-directory.ts";
import { ZipStreamWriter } from "../../../src/archive/zip/index.ts";
import { checkZipBytesIndependently } from "../../support/zip-check.ts";

const encoder = new TextEncoder();

function record(name: string, fields: Partial<CentralRecord> = {}): CentralRecord {
  return { name: encoder.encode(name), method: 8, dosTime: 0x6a4d, dosDate: 0x58c7, crc: 0xdeadbeef, compressed: 10, uncompressed: 20, offset: 0, zip64: false, encrypted: false, ...fields };
}

/** The records in `bytes`, read back field by field as a zip reader would. */
function parse(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records = [];
  for (let at = 0; at < bytes.length; ) {
    expect(view.getUint32(at, true)).toBe(0x02014b50);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const extra = bytes.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
    records.push({
      needed: view.getUint16(at + 6, true),
      flags: view.getUint16(at + 8, true),
      method: view.getUint16(at + 10, true),
      crc: view.getUint32(at + 16, true),
      compressed: view.getUint32(at + 20, true),
      uncompressed: view.getUint32(at + 24, true),
      offset: view.getUint32(at + 42, true),
      name: new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      extra: [...extra],
    });
    at += 46 + nameLength + extraLength;
  }
  return records;
}

test("20 000 records, long and non-ASCII names among them, come back in order as they were added", () => {
  const directory = new CentralDirectory();
  const names = Array.from({ length: 20_000 }, (_, i) => (i % 1000 === 7 ? `storage/${"ü".repeat(2000)}/${i}` : `storage/col_${i % 10}/rec_${i}/фото_${i}.png`));
  for (const [i, name] of names.entries()) directory.add(record(name, { offset: i * 1000, crc: i }));
  expect(directory.count).toBe(20_000);
  const parsed = parse(directory.bytes());
  expect(parsed.map((r) => r.name)).toEqual(names);
  expect(parsed.map((r) => r.offset)).toEqual(names.map((_, i) => i * 1000));
  expect(parsed.map((r) => r.crc)).toEqual(names.map((_, i) => i));
  expect(parsed[0]).toMatchObject({ needed: 20, flags: 0x0808, method: 8, compressed: 10, uncompressed: 20, extra: [] });
});

test("sizes and offsets past 4 GiB go to a zip64 extra field, in the order the format lists them, and only those", () => {
  const directory = new CentralDirectory();
  directory.add(record("big.db", { uncompressed: 5 * 2 ** 32, compressed: 2 ** 32 + 1, offset: 7, zip64: true }));
  directory.add(record("late.txt", { offset: 2 ** 32 + 5 }));
  directory.add(record("announced.bin", { zip64: true }));
  const [big, late, announced] = parse(directory.bytes());
  const u64 = (n: number) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n), true); return [...b]; };
  expect(big).toMatchObject({ needed: 45, uncompressed: 0xffffffff, compressed: 0xffffffff, offset: 7, extra: [1, 0, 16, 0, ...u64(5 * 2 ** 32), ...u64(2 ** 32 + 1)] });
  expect(late).toMatchObject({ needed: 45, uncompressed: 20, compressed: 10, offset: 0xffffffff, extra: [1, 0, 8, 0, ...u64(2 ** 32 + 5)] });
  // Announced as zip64 (its local header has the fields) but small: version 4.5, no extra field needed here.
  expect(announced).toMatchObject({ needed: 45, extra: [] });
});

test("an encrypted entry's record says method 99, the encryption flag and version 5.1, with the AES extra field", () => {
  const directory = new CentralDirectory();
  directory.add(record("a.txt", { encrypted: true, method: 8 }));
  expect(parse(directory.bytes())[0]).toMatchObject({ needed: 51, flags: 0x0809, method: 99, extra: [0x01, 0x99, 7, 0, 2, 0, 0x41, 0x45, 3, 8, 0] });
});

test("a zip of 70 000 entries (past the end record's 16-bit count) written with the packed directory reads back whole", async () => {
  const chunks: Uint8Array[] = [];
  const zip = new ZipStreamWriter(async (data) => void chunks.push(data.slice()));
  const names = Array.from({ length: 70_000 }, (_, i) => (i === 0 ? "data.db" : `storage/c/ä_${i}.bin`));
  for (const name of names) {
    await zip.addEntry(name, [encoder.encode(name)], { level: 0, lastModified: new Date(2024, 0, 2), sizeHint: name.length });
  }
  await zip.close();
  const bytes = new Uint8Array(Buffer.concat(chunks));
  expect(await checkZipBytesIndependently(bytes)).toContain("No errors detected");
  const report = await readArchive({ size: bytes.length, read: async (o, l) => bytes.slice(o, o + l) });
  expect(report.paths).toEqual(names);
});
