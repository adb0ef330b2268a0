// The packed entry records and the local-header check that replaced zip.js's own in a restore: the records hold what
// zip.js read from the central directory, and on mutants of a real archive (a byte of a local header, its name, its
// extra field or a data descriptor changed) the check refuses exactly the entries zip.js's strict getData refuses.
import { beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import type { Entry, FileEntry } from "@zip.js/zip.js";
import { InvalidBackupError } from "../../src/errors.ts";
import { MANIFEST_PATH, openZip, readArchive, writeArchive, type ArchiveSource } from "../../src/archive/index.ts";
import { ArchiveEntries } from "../../src/archive/archive-entries.ts";
import { checkedDataRange, EntryRanges } from "../../src/archive/local-headers.ts";
import { baseArchive } from "../support/archive-fuzz.ts";

const reader = (bytes: Uint8Array) => ({ size: bytes.length, read: async (offset: number, length: number) => bytes.slice(offset, offset + length) });

let base: Uint8Array;
beforeAll(async () => {
  base = await baseArchive();
});

/** zip.js's strict entries of a zip (undefined where it refuses the central directory). */
async function zipEntries(bytes: Uint8Array): Promise<{ entries: Entry[]; directoryOffset: number } | undefined> {
  const zip = openZip(reader(bytes));
  try {
    const entries = await zip.getEntries();
    return { entries, directoryOffset: zip.directoryOffset! };
  } catch {
    return undefined;
  } finally {
    await zip.close();
  }
}

test("the packed records hold zip.js's names, name bytes, offsets, sizes, CRC-32s, flags and methods", async () => {
  const { entries } = (await zipEntries(base))!;
  const records = new ArchiveEntries();
  for (const entry of entries) records.add(entry);
  expect(records.count).toBe(entries.length);
  entries.forEach((entry, i) => {
    const record = records.at(i);
    expect(record).toMatchObject({
      index: i,
      filename: entry.filename,
      offset: entry.offset,
      compressedSize: entry.compressedSize,
      uncompressedSize: entry.uncompressedSize,
      crc32: entry.crc32,
      crc32Known: true,
      rawBitFlag: entry.rawBitFlag,
      compressionMethod: entry.compressionMethod,
      encrypted: false,
    });
    expect([...record.rawFilename]).toEqual([...entry.rawFilename]);
    expect(records.rawFilenameLength(i)).toBe(entry.rawFilename.length);
  });
  // Growing past the first capacity keeps every earlier record.
  const many = new ArchiveEntries();
  for (let k = 0; k < 300; k++) many.add(entries[k % entries.length]!);
  expect(many.at(299).filename).toBe(entries[299 % entries.length]!.filename);
  expect(many.at(7).offset).toBe(entries[7 % entries.length]!.offset);
});

test("what the manifest lists goes into the records: SHA-256s and deflate blocks, and back out as the manifest's entries", async () => {
  const report = await readArchive(reader(base));
  const listed = report.manifest!.entries();
  expect(listed.map((e) => e.path)).toEqual(report.paths);
  expect(listed.every((e) => /^[0-9a-f]{64}$/.test(e.sha256))).toBe(true);
  expect(listed.find((e) => e.path === "data.db")?.deflateBlocks?.compressedSizes.length).toBeGreaterThan(1);
});

/** Every byte position of the local headers (fixed part, name, extra field) and of the 24 bytes after each entry's data. */
async function headerPositions(bytes: Uint8Array): Promise<number[]> {
  const { entries } = (await zipEntries(bytes))!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return entries.filter((e) => !e.directory).flatMap((entry) => {
    const start = entry.offset + 30 + view.getUint16(entry.offset + 26, true) + view.getUint16(entry.offset + 28, true);
    const end = start + entry.compressedSize;
    const header = Array.from({ length: start - entry.offset }, (_, k) => entry.offset + k);
    const descriptor = Array.from({ length: Math.min(24, bytes.length - end) }, (_, k) => end + k);
    return [...header, ...descriptor];
  });
}

/** Each file entry's verdict, read in central-directory order: zip.js's (getData, overlap only) and ours. */
async function verdicts(bytes: Uint8Array): Promise<{ zipjs: (string | undefined)[]; ours: (string | undefined)[] } | undefined> {
  const listing = await zipEntries(bytes);
  if (!listing) return undefined;
  const files = listing.entries.filter((e) => !e.directory) as FileEntry[];
  const zip = openZip(reader(bytes));
  const zipjsEntries = (await zip.getEntries()).filter((e) => !e.directory) as FileEntry[];
  const zipjs: (string | undefined)[] = [];
  for (const entry of zipjsEntries) {
    zipjs.push(await entry.getData(new WritableStream(), { checkOverlappingEntryOnly: true }).then(() => undefined, (error: Error) => `${error.message} ${(error as { reason?: string }).reason ?? ""}`));
  }
  await zip.close();
  const records = new ArchiveEntries();
  for (const entry of files) records.add(entry);
  const ranges = new EntryRanges(Float64Array.from(files.map((f) => f.offset)));
  const ours: (string | undefined)[] = [];
  for (let i = 0; i < records.count; i++) {
    ours.push(await checkedDataRange(reader(bytes), records.at(i), listing.directoryOffset, ranges).then(() => undefined, (error: Error) => {
      if (!(error instanceof InvalidBackupError)) throw error;
      return error.message;
    }));
  }
  return { zipjs, ours };
}

test("the real archive: every entry passes both checks", async () => {
  const both = (await verdicts(base))!;
  expect(both.zipjs.every((v) => v === undefined)).toBe(true);
  expect(both.ours.every((v) => v === undefined)).toBe(true);
});

test("a local header, its name, its extra field or a data descriptor changed: refused exactly where zip.js refuses, in its words", async () => {
  const positions = await headerPositions(base);
  let refused = 0;
  let compared = 0;
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: positions.length - 1 }), fc.integer({ min: 1, max: 255 }), async (k, xor) => {
      const mutant = Uint8Array.from(base);
      mutant[positions[k]!]! ^= xor;
      const both = await verdicts(mutant);
      if (!both) return;
      compared++;
      const overlap = both.zipjs.some((v) => v?.startsWith("Overlapping entry"));
      if (overlap) {
        // zip.js blames the later-read entry of an overlapping pair, ours the one whose bytes run into the other's.
        expect(both.ours.some((v) => v !== undefined)).toBe(true);
        return;
      }
      both.zipjs.forEach((zipjs, i) => {
        const ours = both.ours[i];
        expect(ours === undefined).toBe(zipjs === undefined);
        if (zipjs?.startsWith("Ambiguous archive")) expect(ours).toContain(`(${zipjs.slice("Ambiguous archive ".length).trim()})`);
        if (ours !== undefined) refused++;
      });
    }),
    { seed: 20261207, numRuns: 400 },
  );
  // The mutants reach both sides: changes zip.js refuses, and changes to fields it does not compare.
  expect(refused).toBeGreaterThan(50);
  expect(compared).toBeGreaterThan(300);
});

test("a restore refuses an entry whose local header names another file than its central record", async () => {
  const data = (n: number) => new TextEncoder().encode("x".repeat(n));
  const sources: ArchiveSource[] = [["data.db", data(5000)], ["storage/a.txt", data(300)]].map(([path, bytes]) => ({
    path: path as string,
    size: (bytes as Uint8Array).length,
    lastModified: new Date(),
    open: async () => new Blob([bytes as BlobPart]).stream(),
  }));
  const chunks: Uint8Array[] = [];
  await writeArchive(sources, new WritableStream({ write: (chunk) => void chunks.push(new Uint8Array(chunk)) }), { producer: "test" });
  const zip = Buffer.concat(chunks);
  const { entries } = (await zipEntries(zip))!;
  const entry = entries.find((e) => e.filename === "storage/a.txt")!;
  const nameAt = entry.offset + 30 + "storage/".length;
  zip[nameAt] = "b".charCodeAt(0); // storage/b.txt in the local header only
  await expect(readArchive(reader(zip))).rejects.toThrow(
    new InvalidBackupError("The entry storage/a.txt disagrees with its central directory record (mismatched local file header (filename)): the archive is damaged or was altered."),
  );
  expect(entries.some((e) => e.filename === MANIFEST_PATH)).toBe(true);
});
