import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readArchive } from "../../src/archive/read-archive.ts";
import { writeArchive, type ArchiveSource } from "../../src/archive/write-archive.ts";
import { InvalidBackupError } from "../../src/errors.ts";

const bytesSource = (path: string, data: Uint8Array): ArchiveSource => ({
  path,
  size: data.length,
  lastModified: new Date("2026-01-02T03:04:05Z"),
  open: async () => new Blob([data as Uint8Array<ArrayBuffer>]).stream(),
});

/** Collects a stream into memory: fine for the small archives of these tests. */
function memorySink() {
  const chunks: Uint8Array[] = [];
  return { stream: new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) }), bytes: () => new Uint8Array(Buffer.concat(chunks)) };
}
const reader = (bytes: Uint8Array) => ({ size: bytes.length, read: async (o: number, l: number) => bytes.subarray(o, o + l) });

describe("writeArchive → readArchive", () => {
  const db = new TextEncoder().encode("SQLite format 3\u0000".padEnd(8192, "x"));
  const photo = crypto.getRandomValues(new Uint8Array(200_000));

  test("round trip: every entry back byte for byte, manifest checksums and archive checksum right", async () => {
    const sink = memorySink();
    const written = await writeArchive([bytesSource("data.db", db), bytesSource("storage/p.jpg", photo)], sink.stream, { producer: "test" });
    const bytes = sink.bytes();
    expect(written.size).toBe(bytes.length);
    expect(written.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(written.manifest.entries).toEqual([
      { path: "data.db", size: db.length, sha256: createHash("sha256").update(db).digest("hex") },
      { path: "storage/p.jpg", size: photo.length, sha256: createHash("sha256").update(photo).digest("hex") },
    ]);
    const got = new Map<string, Uint8Array[]>();
    const report = await readArchive(reader(bytes), {
      sink: async (path) => {
        got.set(path, []);
        return new WritableStream({ write: (c) => void got.get(path)!.push(c) });
      },
    });
    expect(report.entries).toBe(2);
    expect(report.manifest?.producer).toBe("test");
    expect(Buffer.concat(got.get("data.db")!).equals(Buffer.from(db))).toBe(true);
    expect(Buffer.concat(got.get("storage/p.jpg")!).equals(Buffer.from(photo))).toBe(true);
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
    await expect(writeArchive([bytesSource("data.db", db), failing], output, { producer: "test" })).rejects.toThrow("disk read failed");
    expect(aborted).toBe(true);
  });

  test("a flipped byte is named with its entry", async () => {
    const sink = memorySink();
    await writeArchive([bytesSource("data.db", db), bytesSource("storage/p.jpg", photo)], sink.stream, { producer: "test" });
    const bytes = sink.bytes();
    bytes[bytes.length - 100_000] = bytes[bytes.length - 100_000]! ^ 1; // inside the stored photo
    await expect(readArchive(reader(bytes))).rejects.toThrow(new InvalidBackupError("The entry storage/p.jpg is corrupt: its CRC-32 does not match."));
  });
});
