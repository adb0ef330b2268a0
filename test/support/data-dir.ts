import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { createClient } from "@libsql/client";

/** Fills a data directory like an app would: rows in data.db, files under storage/. */
export async function seedDataDir(dir: string, options: { rows?: number; files?: number; tag?: string } = {}) {
  const { rows = 200, files = 5, tag = "v1" } = options;
  const db = createClient({ url: `file:${join(dir, "data.db")}` });
  await db.execute("PRAGMA journal_mode=WAL");
  await db.execute("CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY, title TEXT, body TEXT)");
  await db.batch(
    Array.from({ length: rows }, (_, i) => ({
      sql: "INSERT INTO posts (title, body) VALUES (?, ?)",
      args: [`${tag} post ${i}`, `${tag} body ${i} `.repeat(20)],
    })),
    "write",
  );
  db.close();
  for (let i = 0; i < files; i++) {
    const folder = join(dir, "storage", `col${i % 2}`, `rec${i}`);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `file${i}.txt`), `${tag} file ${i}\n`.repeat(100 + i));
  }
  await writeFile(join(dir, "storage", "photo.jpg"), crypto.getRandomValues(new Uint8Array(50_000)));
}

/** Every file under `root` (relative path → SHA-256), for byte-for-byte comparisons. */
export async function hashTree(root: string, skip: (rel: string) => boolean = () => false): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(root, path);
      if (skip(rel)) continue;
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) out[rel] = createHash("sha256").update(await readFile(path)).digest("hex");
    }
  };
  await walk(root);
  return out;
}

/** The rows of `posts`, for comparing database contents. */
export async function readPosts(dbPath: string): Promise<unknown[]> {
  const db = createClient({ url: `file:${dbPath}` });
  try {
    const result = await db.execute("SELECT id, title, body FROM posts ORDER BY id");
    return result.rows.map((row) => [row[0], row[1], row[2]]);
  } finally {
    db.close();
  }
}
