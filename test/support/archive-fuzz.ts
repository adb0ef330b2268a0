// The fuzz property of the archive reader, shared by `bun test` (seeded, bounded) and `npm run fuzz` (longer):
// every mutant of a real archive is either refused with an InvalidBackupError, or read as exactly the files its
// manifest (or, without one, its central directory) lists, byte for byte, as the tests' own zip reader sees
// them. Never another error, never fewer files than the archive holds.
import { createClient } from "@libsql/client";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidBackupError } from "../../src/errors.ts";
import { type ArchiveSource, MANIFEST_PATH, readArchive, writeArchive } from "../../src/archive/index.ts";
import { entryBytes, entryName, parseZip, sha256Of } from "./zip-model.ts";

/** What an accepted archive must restore to: path → SHA-256. */
export type ExpectedFiles = Map<string, string>;

/**
 * A real archive as the server writes it: a libSQL data.db of a little over 1 MiB (so it is deflated in two
 * blocks, read in parallel), text and random uploads (deflated), a photo (stored), and the manifest.
 */
export async function baseArchive(): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), "backstream-fuzz-"));
  try {
    const db = createClient({ url: `file:${join(dir, "data.db")}` });
    await db.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT)");
    for (let i = 0; i < 60; i++) await db.execute({ sql: "INSERT INTO posts (body) VALUES (?)", args: [`post ${i} `.repeat(2500)] });
    db.close();
    const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
    const files: [string, Uint8Array][] = [
      ["data.db", new Uint8Array(await readFile(join(dir, "data.db")))],
      ["storage/col/rec/notes.txt", new TextEncoder().encode("notes ".repeat(3000))],
      ["storage/col/rec/blob.bin", random(20_000)],
      ["storage/col/rec2/photo.jpg", random(9_000)],
      ["storage/col/rec2/empty.txt", new Uint8Array()],
    ];
    const sources: ArchiveSource[] = files.map(([path, data]) => ({ path, size: data.length, lastModified: new Date(), open: async () => new Blob([data as BlobPart]).stream() }));
    const chunks: Uint8Array[] = [];
    await writeArchive(sources, new WritableStream({ write: (chunk) => void chunks.push(new Uint8Array(chunk)) }), { producer: "fuzz" });
    return Buffer.concat(chunks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The files an archive lists, by the tests' own reader: the manifest's entries where it has a readable one, else
 * the central directory's files with their inflated bytes' SHA-256. Undefined when that reader cannot take it
 * apart (then no correct reader may accept it).
 */
export function listedFiles(bytes: Uint8Array): ExpectedFiles | undefined {
  const entries = parseZip(bytes);
  if (!entries) return undefined;
  const manifestEntry = entries.find((e) => entryName(e) === MANIFEST_PATH);
  if (manifestEntry) {
    const raw = entryBytes(manifestEntry);
    try {
      const manifest = JSON.parse(new TextDecoder().decode(raw)) as { entries: { path: string; sha256: string }[] };
      return new Map(manifest.entries.map((e) => [e.path, e.sha256]));
    } catch {
      return undefined;
    }
  }
  const files: ExpectedFiles = new Map();
  for (const entry of entries) {
    const name = entryName(entry);
    if (name.endsWith("/")) continue;
    const data = entryBytes(entry);
    if (!data) return undefined;
    files.set(name, sha256Of(data));
  }
  return files;
}

/** The outcome of reading one mutant through `readArchive`; throws when the property does not hold. */
export async function readMutant(bytes: Uint8Array): Promise<"refused" | "accepted"> {
  const extracted = new Map<string, Uint8Array[]>();
  try {
    await readArchive(
      { size: bytes.length, read: async (offset, length) => bytes.slice(offset, offset + length) },
      {
        sink: async (path) => {
          if (extracted.has(path)) throw new Error(`${path} was extracted twice`);
          const chunks: Uint8Array[] = [];
          extracted.set(path, chunks);
          return new WritableStream({ write: (chunk) => void chunks.push(new Uint8Array(chunk)) });
        },
      },
    );
  } catch (error) {
    if (error instanceof InvalidBackupError) return "refused";
    throw new Error(`a mutant was not refused cleanly: ${(error as Error)?.name}: ${(error as Error)?.message}`);
  }
  const listed = listedFiles(bytes);
  if (!listed) throw new Error("a mutant was accepted that the tests' own zip reader cannot take apart");
  const got = new Map([...extracted].map(([path, chunks]) => [path, sha256Of(Buffer.concat(chunks))]));
  assertSameFiles(got, listed);
  return "accepted";
}

/** Throws unless `got` holds exactly the files of `expected`, with the same SHA-256. */
export function assertSameFiles(got: ExpectedFiles, expected: ExpectedFiles): void {
  const missing = [...expected.keys()].filter((path) => !got.has(path));
  const extra = [...got.keys()].filter((path) => !expected.has(path));
  const differ = [...expected].filter(([path, sha]) => got.has(path) && got.get(path) !== sha).map(([path]) => path);
  if (missing.length || extra.length || differ.length) {
    throw new Error(`accepted, but restored ${got.size} files for ${expected.size} listed: missing ${missing.join(", ") || "none"}; extra ${extra.join(", ") || "none"}; different ${differ.join(", ") || "none"}`);
  }
}
