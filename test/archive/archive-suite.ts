// The archive core's tests, written once and run by both runtimes: `bun test` (archive.test.ts) and
// `npm run test:deno` (test/deno/archive.deno.ts). Assertions use node:assert, which both provide.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type ArchiveSource, readArchive, writeArchive } from "../../src/archive/index.ts";
import { crc32, crc32Portable, entryPathProblem, isCompressible } from "../../src/archive/zip/index.ts";
import { InvalidBackupError } from "../../src/errors.ts";

type Define = (name: string, fn: () => Promise<void> | void) => void;

const bytesSource = (path: string, data: Uint8Array): ArchiveSource => ({
  path,
  size: data.length,
  lastModified: new Date("2026-01-02T03:04:05Z"),
  open: async () => new Blob([data as Uint8Array<ArrayBuffer>]).stream(),
});

const concat = (chunks: Uint8Array[]) => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (out.set(c, at), at + c.length), 0);
  return out;
};

function memorySink() {
  const chunks: Uint8Array[] = [];
  return { stream: new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) }), bytes: () => concat(chunks) };
}
const reader = (bytes: Uint8Array) => ({ size: bytes.length, read: async (o: number, l: number) => bytes.subarray(o, o + l) });
const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

export function archiveSuite(test: Define): void {
  const db = new TextEncoder().encode("SQLite format 3\u0000".padEnd(300_000, "page data "));
  const photo = crypto.getRandomValues(new Uint8Array(60_000));

  test("round trip: every entry back byte for byte, manifest and archive checksums right", async () => {
    const sink = memorySink();
    const written = await writeArchive([bytesSource("data.db", db), bytesSource("storage/p.jpg", photo)], sink.stream, { producer: "test" });
    const bytes = sink.bytes();
    assert.equal(written.size, bytes.length);
    assert.equal(written.sha256, sha(bytes));
    assert.deepEqual(written.manifest.entries, [
      { path: "data.db", size: db.length, sha256: sha(db) },
      { path: "storage/p.jpg", size: photo.length, sha256: sha(photo) },
    ]);
    const got = new Map<string, Uint8Array[]>();
    const report = await readArchive(reader(bytes), {
      sink: async (path) => {
        got.set(path, []);
        return new WritableStream({ write: (c) => void got.get(path)!.push(c) });
      },
    });
    assert.equal(report.entries, 2);
    assert.equal(report.manifest?.producer, "test");
    assert.equal(sha(concat(got.get("data.db")!)), sha(db));
    assert.equal(sha(concat(got.get("storage/p.jpg")!)), sha(photo));
  });

  test("a source that fails mid-stream fails the archive and aborts the output", async () => {
    let aborted = false;
    const output = new WritableStream<Uint8Array>({ abort: () => void (aborted = true) });
    const failing: ArchiveSource = {
      path: "storage/broken.bin",
      size: 10_000_000,
      lastModified: new Date(),
      open: async () => {
        let sent = 0;
        return new ReadableStream({
          pull(controller) {
            if (sent++ > 3) controller.error(new Error("disk read failed"));
            else controller.enqueue(new Uint8Array(65536));
          },
        });
      },
    };
    await assert.rejects(writeArchive([bytesSource("data.db", db), failing], output, { producer: "test" }), /disk read failed/);
    assert.equal(aborted, true);
  });

  test("a flipped byte is named with its entry", async () => {
    const sink = memorySink();
    await writeArchive([bytesSource("data.db", db), bytesSource("storage/p.jpg", photo)], sink.stream, { producer: "test" });
    const bytes = sink.bytes();
    const at = bytes.length - 30_000; // inside the stored photo
    bytes[at] = bytes[at]! ^ 1;
    await assert.rejects(readArchive(reader(bytes)), new InvalidBackupError("The entry storage/p.jpg is corrupt: its CRC-32 does not match."));
  });

  test("entry paths must stay inside the data directory", () => {
    for (const ok of ["data.db", "storage/a/b.txt", "storage/..hidden", "a..b/c"]) assert.equal(entryPathProblem(ok), undefined);
    for (const bad of ["", "/etc/passwd", "C:/x", "..", "../x", "a/../../x", "a\\b", "a//b", "./a", "a/./b", "a\u0000b"]) {
      assert.equal(typeof entryPathProblem(bad), "string", bad);
    }
  });

  test("already-compressed formats are stored, everything else deflated", () => {
    assert.equal(isCompressible("data.db"), true);
    assert.equal(isCompressible("storage/x/photo.JPG"), false);
    assert.equal(isCompressible("storage/x/a.tar.gz"), false);
  });

  test("the runtime CRC-32 matches the portable one, also when continued", () => {
    const data = crypto.getRandomValues(new Uint8Array(60_003)) // the Web Crypto cap is 65536 bytes (Deno enforces it);
    assert.equal(crc32(data), crc32Portable(data));
    assert.equal(crc32(data.subarray(777), crc32(data.subarray(0, 777))), crc32Portable(data));
    assert.equal(crc32Portable(new TextEncoder().encode("123456789")), 0xcbf43926);
  });
}
