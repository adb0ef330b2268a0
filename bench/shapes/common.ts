// What every data shape of the bench shares: the Shape interface, the cache (one folder per shape, size and seed,
// complete once `.complete` is written) and the generators' deterministic pieces (random bytes, prose, sizes).
import { Database } from "bun:sqlite";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureCached, prng } from "../generate-data.ts";

export { prng };

export interface ShapeSizes {
  /** `--db-mb` and `--storage-mb`: the default shape's sizes, which every other shape scales from. */
  dbMb: number;
  storageMb: number;
  seed: number;
}

export interface Shape {
  name: string;
  /** One line for the report: what the data set holds. */
  describe(sizes: ShapeSizes): string;
  /** The cache folder's name for these sizes. */
  folder(sizes: ShapeSizes): string;
  /** Writes `data.db` and `storage/` into `dir` (empty), deterministically from `sizes.seed`. */
  generate(dir: string, sizes: ShapeSizes): Promise<void>;
  /**
   * What an app writes between two backups: about `percent` of the rows again (and, where the shape is about
   * uploads, as many new files). Runs beside the server, on its data directory. Returns the rows added.
   */
  addChanges(dataDir: string, percent: number): Promise<number>;
}

/** The data set of `shape` at `sizes`, generated once into `root` and reused; never modified (runs work on copies). */
export async function ensureShape(root: string, shape: Shape, sizes: ShapeSizes, log: (line: string) => void): Promise<string> {
  const dir = join(root, shape.folder(sizes));
  return ensureCached(dir, (temp) => shape.generate(temp, sizes), (seconds) => log(`generated ${shape.name} in ${dir} in ${seconds.toFixed(1)} s`));
}

/** `size` bytes of xorshift32 noise from `seed`: incompressible, and the same for the same seed. */
export function noise(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  const words = new Uint32Array(bytes.buffer, 0, size >>> 2);
  let x = seed | 1;
  for (let k = 0; k < words.length; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[k] = x;
  }
  for (let k = words.length * 4; k < size; k++) bytes[k] = (x >>> (8 * (k & 3))) & 0xff;
  return bytes;
}

/** A few dozen words: prose from them deflates several times over. */
export const VOCABULARY = (
  "the a of and to in is it that was for on are with as his they be at one have this from or had by word but what " +
  "some we can out other were all there when up use your how said an each she which do their time"
).split(" ");

export function words(rand: () => number, count: number, vocabulary = VOCABULARY): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(vocabulary[Math.floor(rand() * vocabulary.length)]!);
  return out.join(" ");
}

/** `size` bytes of text lines of prose, for text uploads. */
export function proseBytes(rand: () => number, size: number): Uint8Array {
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const line = `${words(rand, 14)}\n`;
    parts.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(parts.join("").slice(0, size));
}

export function hex(rand: () => number, bytes: number): string {
  let out = "";
  for (let i = 0; i < bytes; i++) out += Math.floor(rand() * 256).toString(16).padStart(2, "0");
  return out;
}

/** A timestamp in 2020–2023, as PocketBase writes them. */
export const timestamp = (rand: () => number) => new Date(1.6e12 + Math.floor(rand() * 1e11)).toISOString().replace("T", " ");

/** An upload file `name` under storage/<collection>/<record>/, written with its parent folders. */
export async function writeUpload(storage: string, collection: string, record: string, name: string, bytes: Uint8Array): Promise<void> {
  const folder = join(storage, collection, record);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, name), bytes);
}

/**
 * A generated data set's `data.db` in `dir`: `define` makes its schema and returns a batch that inserts rows, run
 * until the database reaches `mb`; then it is checkpointed into the file and closed. Written without fsyncs (a lost
 * data set is generated again).
 */
export function generateDatabase(dir: string, mb: number, define: (db: Database) => () => void): void {
  const db = new Database(join(dir, "data.db"), { create: true });
  db.run("PRAGMA journal_mode=WAL");
  db.run("PRAGMA synchronous=OFF");
  const batch = define(db);
  while (dbBytes(db) < mb * MB) batch();
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

/** The database's size in bytes as SQLite counts it (pages × page size). */
export function dbBytes(db: { query(sql: string): { get(): unknown } }): number {
  const row = db.query("SELECT page_count * page_size AS n FROM pragma_page_count, pragma_page_size").get() as { n: number };
  return Number(row.n);
}

export const MB = 1024 * 1024;
