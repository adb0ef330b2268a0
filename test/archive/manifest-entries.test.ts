import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { ManifestEntries } from "../../src/archive/manifest-entries.ts";
import { parseManifest } from "../../src/archive/index.ts";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const HEADER = { format: 1 as const, createdAt: "2026-01-02T03:04:05.678Z", producer: 'backstream "test" \\ ü' };

/** The chunks `json` lends, copied as they come, as one text. */
function jsonOf(entries: ManifestEntries): string {
  const chunks: Uint8Array[] = [];
  for (const chunk of entries.json(HEADER)) chunks.push(chunk.slice());
  return new TextDecoder().decode(Buffer.concat(chunks));
}

test("the streamed JSON is byte for byte the runtime's JSON.stringify(manifest, null, 1), whatever the paths", () => {
  const entries = new ManifestEntries();
  const paths = [
    "data.db",
    "storage/a/photo.jpg",
    'storage/quote"and\\backslash.txt',
    "storage/tab\tand\nnewline\u0001.txt",
    "storage/фото/照片/🙂.png",
    "storage/lone\ud800surrogate.txt",
    `storage/${"long/".repeat(20_000)}end.txt`, // longer than a chunk
    "storage/empty.txt",
  ];
  for (const [i, path] of paths.entries()) {
    const entry = entries.add(path, i === 7 ? 0 : 2 ** 40 + i);
    entries.setSha256(entry, sha256(path));
  }
  entries.setDeflateBlocks(0, { blockSize: 1024 * 1024, compressedSizes: [400_000, 12] });
  const manifest = entries.manifest(HEADER);
  expect(manifest.entries[0]).toEqual({ path: "data.db", size: 2 ** 40, sha256: sha256("data.db"), deflateBlocks: { blockSize: 1024 * 1024, compressedSizes: [400_000, 12] } });
  expect(jsonOf(entries)).toBe(JSON.stringify(manifest, null, 1));
  const parsed = parseManifest(jsonOf(entries));
  expect("manifest" in parsed && parsed.manifest).toEqual(manifest);
});

test("many entries span many chunks, each lent and the whole still the runtime's JSON", () => {
  const entries = new ManifestEntries();
  for (let i = 0; i < 20_000; i++) entries.setSha256(entries.add(`storage/col_${i % 10}/r${i}/note_${i}.txt`, i * 1000), sha256(String(i)));
  const chunks = [...entries.json(HEADER)];
  expect(chunks.length).toBeGreaterThan(5);
  // Lent: every chunk but the last lies in the same memory.
  expect(new Set(chunks.slice(0, -1).map((chunk) => chunk.buffer)).size).toBe(1);
  expect(entries.count).toBe(20_000);
  expect(jsonOf(entries)).toBe(JSON.stringify(entries.manifest(HEADER), null, 1));
});

test("no entries: the runtime's empty array", () => {
  expect(jsonOf(new ManifestEntries())).toBe(JSON.stringify({ ...HEADER, entries: [] }, null, 1));
});

test("a digest that is not a SHA-256 in hex is refused rather than stored as zeros", () => {
  const entries = new ManifestEntries();
  const entry = entries.add("data.db", 1);
  expect(() => entries.setSha256(entry, "not hex")).toThrow();
});
