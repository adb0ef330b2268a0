// The `prose` shape: very compressible rows (~150 words from a few dozen) under a random-hex TEXT primary key, so
// every write touches the key's index all over; a JSON column, a timestamp index; uploads of 20 KB–2 MB, a third
// random bytes.
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { dbBytes, generateDatabase, hex, MB, noise, proseBytes, prng, timestamp, words, writeUpload, type Shape } from "./common.ts";

export const proseShape: Shape = {
  name: "prose",
  describe: (s) => `${s.dbMb} MB db of ~150-word rows from a few dozen words, random-hex TEXT key, JSON, timestamp index + ${s.storageMb} MB of 20 KB–2 MB uploads, a third random`,
  folder: (s) => `shape-prose-${s.dbMb}mb-${s.storageMb}mb-s${s.seed}`,
  async generate(dir, s) {
    const rand = prng(s.seed * 31 + 1);
    generateDatabase(dir, s.dbMb, (db) => {
      db.run("CREATE TABLE posts (id TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL, meta JSON, created TEXT NOT NULL)");
      db.run("CREATE INDEX posts_created ON posts (created)");
      const insert = db.prepare("INSERT INTO posts (id, body, meta, created) VALUES (?, ?, ?, ?)");
      const batch = db.transaction((count: number) => {
        for (let i = 0; i < count; i++) {
          const meta = { author: words(rand, 2), likes: Math.floor(rand() * 1000), tags: [words(rand, 1), words(rand, 1)], draft: rand() < 0.1 };
          insert.run(hex(rand, 15), words(rand, 130 + Math.floor(rand() * 40)), JSON.stringify(meta), timestamp(rand));
        }
      });
      return () => batch(5000);
    });
    const files = prng(s.seed * 31 + 2);
    let total = 0;
    for (let i = 0; total < s.storageMb * MB; i++) {
      // Log-uniform between 20 KB and 2 MB: mostly small, a few large.
      const size = Math.floor(20 * 1024 * Math.pow(100, files()));
      const random = i % 3 === 0;
      const bytes = random ? noise(size, s.seed * 7919 + i) : proseBytes(files, size);
      await writeUpload(join(dir, "storage"), `posts_${i % 5}`, `r${hex(files, 7)}`, random ? `image_${i}.jpg` : `text_${i}.md`, bytes);
      total += size;
    }
  },
  async addChanges(dataDir, percent) {
    const db = createClient({ url: `file:${join(dataDir, "data.db")}` });
    try {
      const every = Math.max(1, Math.round(100 / percent));
      const result = await db.execute(
        `INSERT INTO posts (id, body, meta, created)
         SELECT lower(hex(randomblob(15))), body, meta, strftime('%Y-%m-%d %H:%M:%fZ', 'now') FROM posts WHERE rowid % ${every} = 0`,
      );
      return result.rowsAffected;
    } finally {
      db.close();
    }
  },
};
