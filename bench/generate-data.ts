import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@libsql/client";

/** A small seeded PRNG (mulberry32): the same seed gives the same data set. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore " +
  "magna aliqua backup restore database page archive stream worker thread journal snapshot invoice customer order " +
  "status pending shipped delivered cancelled amount currency euro dollar address street city country postal code " +
  "email phone note comment review rating product category price stock warehouse supplier"
).split(" ");

function sentence(rand: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  return out.join(" ");
}

export interface DataSetOptions {
  dbMb: number;
  storageMb: number;
  seed: number;
}

/**
 * A data directory like an app's: `data.db` of rows with text, JSON and indexes, and `storage/` with a few
 * hundred files, a third random bytes named `.jpg`, the rest text. Cached by size and seed under `root`,
 * so repeated runs skip the generation; the cached copy is never modified (runs work on a copy).
 */
export async function ensureDataSet(root: string, options: DataSetOptions, log: (line: string) => void): Promise<string> {
  const dir = join(root, `data-${options.dbMb}mb-${options.storageMb}mb-s${options.seed}`);
  return ensureCached(dir, (temp) => generateDataSet(temp, options), (seconds) => log(`generated ${dir} in ${seconds.toFixed(1)} s`));
}

/** Writes the data set of `options` into the empty folder `dir` (`ensureDataSet` caches it). */
export async function generateDataSet(dir: string, options: DataSetOptions): Promise<void> {
  await generateDatabase(join(dir, "data.db"), options.dbMb * 1024 * 1024, options.seed);
  await generateStorage(join(dir, "storage"), options.storageMb * 1024 * 1024, options.seed);
}

/**
 * `dir`, made once by `generate` (into `<dir>.tmp`, renamed when complete, so an interrupted generation is never
 * taken for a data set) and reused by later runs; `generated` hears how long a generation took.
 */
export async function ensureCached(dir: string, generate: (temp: string) => Promise<void>, generated: (seconds: number) => void): Promise<string> {
  if (existsSync(join(dir, ".complete"))) return dir;
  await rm(dir, { recursive: true, force: true });
  const temp = `${dir}.tmp`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  const started = performance.now();
  await generate(temp);
  await writeFile(join(temp, ".complete"), "");
  await rename(temp, dir);
  generated((performance.now() - started) / 1000);
  return dir;
}

async function generateDatabase(path: string, targetBytes: number, seed: number): Promise<void> {
  const rand = prng(seed);
  const db = createClient({ url: `file:${path}` });
  await db.execute("PRAGMA journal_mode=WAL");
  await db.execute("PRAGMA synchronous=OFF");
  await db.execute(
    "CREATE TABLE records (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, meta TEXT, email TEXT, created TEXT)",
  );
  await db.execute("CREATE INDEX records_title ON records (title)");
  await db.execute("CREATE INDEX records_created ON records (created)");
  await db.execute("CREATE INDEX records_email ON records (email)");
  let id = 0;
  // Each row with its index entries takes roughly 1 KiB; check the real size every few batches.
  for (;;) {
    const statements = [];
    for (let i = 0; i < 2000; i++) {
      id++;
      const meta = {
        status: WORDS[Math.floor(rand() * 12) + 20],
        amount: Math.round(rand() * 100000) / 100,
        tags: [sentence(rand, 1), sentence(rand, 1)],
        address: { street: sentence(rand, 3), city: sentence(rand, 1), zip: String(10000 + Math.floor(rand() * 89999)) },
      };
      statements.push({
        sql: "INSERT INTO records (id, title, body, meta, email, created) VALUES (?, ?, ?, ?, ?, ?)",
        args: [
          id,
          sentence(rand, 6),
          sentence(rand, 60 + Math.floor(rand() * 120)),
          JSON.stringify(meta),
          `user${Math.floor(rand() * 1e6)}@example.com`,
          new Date(1.6e12 + Math.floor(rand() * 1e11)).toISOString(),
        ],
      });
    }
    await db.batch(statements, "write");
    if (id % 20000 === 0) {
      const size = await db.execute("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
      if (Number(size.rows[0]![0]) >= targetBytes) break;
    }
  }
  await db.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

async function generateStorage(dir: string, targetBytes: number, seed: number): Promise<void> {
  const rand = prng(seed ^ 0x5eed);
  const fileCount = Math.max(6, Math.min(400, Math.round(targetBytes / (1024 * 1024))));
  const perFile = Math.floor(targetBytes / fileCount);
  for (let i = 0; i < fileCount; i++) {
    const folder = join(dir, `collection_${i % 7}`, `record_${i}`);
    await mkdir(folder, { recursive: true });
    // Sizes vary between half and one and a half of the average.
    const size = Math.floor(perFile * (0.5 + rand()));
    if (i % 3 === 0) {
      const bytes = new Uint8Array(size);
      const words = new Uint32Array(bytes.buffer, 0, size >>> 2);
      let x = (seed + i * 7919) | 1;
      for (let k = 0; k < words.length; k++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[k] = x;
      }
      await writeFile(join(folder, `photo_${i}.jpg`), bytes);
    } else {
      const parts: string[] = [];
      let length = 0;
      while (length < size) {
        const line = `${i}:${parts.length} ${sentence(rand, 12)}\n`;
        parts.push(line);
        length += line.length;
      }
      await writeFile(join(folder, i % 2 ? `notes_${i}.txt` : `export_${i}.json`), parts.join("").slice(0, size));
    }
  }
}
