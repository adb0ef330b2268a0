import { expect, test } from "bun:test";
import { parallelDeflaters } from "../../../src/archive/engine/index.ts";
import { readArchive } from "../../../src/archive/index.ts";
import { ZipStreamWriter } from "../../../src/archive/zip/index.ts";
import { checkZipBytesIndependently } from "../../support/zip-check.ts";

test("an entry announced as over 4 GiB gets zip64 headers and descriptor that unzip -t and readArchive accept", async () => {
  const chunks: Uint8Array[] = [];
  const zip = new ZipStreamWriter(async (data) => void chunks.push(data.slice()), { deflater: parallelDeflaters() });
  const db = new TextEncoder().encode("SQLite format 3\0".padEnd(200_000, "rows and rows "));
  // The size hint only decides the header format; the data itself stays small.
  await zip.addEntry("data.db", (async function* () { yield db; })(), { level: 2, lastModified: new Date(), sizeHint: 5 * 1024 ** 3 });
  await zip.addEntry("storage/x.jpg", (async function* () { yield new Uint8Array(1000); })(), { level: 0, lastModified: new Date(), sizeHint: 1000 });
  await zip.close();
  const bytes = new Uint8Array(Buffer.concat(chunks));
  // The zip64 form itself, not only a readable zip: version 4.5, sizes deferred to a zip64 extra field, and a
  // descriptor with 64-bit sizes (signature, CRC, then 8-byte sizes) right before the next local header.
  const view = new DataView(bytes.buffer);
  expect(view.getUint16(4, true)).toBe(45);
  expect([view.getUint32(18, true), view.getUint32(22, true)]).toEqual([0xffffffff, 0xffffffff]);
  expect([view.getUint16(30 + "data.db".length, true), view.getUint16(32 + "data.db".length, true)]).toEqual([1, 16]);
  const next = Buffer.from(bytes).indexOf(Buffer.from("PK\x03\x04", "latin1"), 4);
  expect(view.getUint32(next - 24, true)).toBe(0x08074b50);
  expect(Number(view.getBigUint64(next - 8, true))).toBe(db.length);
  expect(await checkZipBytesIndependently(bytes)).toContain("No errors detected");
  const report = await readArchive({ size: bytes.length, read: async (o, l) => bytes.slice(o, o + l) });
  expect({ entries: report.entries, bytes: report.bytes }).toEqual({ entries: 2, bytes: 201_000 });
});
