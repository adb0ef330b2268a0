// The `blobs` shape: a database of large, mostly incompressible blobs (64 KB–1 MB, 85% random bytes) with a few
// text columns, and little storage: what a backup costs when deflate buys nothing.
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { dbBytes, generateDatabase, hex, MB, noise, proseBytes, prng, timestamp, words, writeUpload, type Shape } from "./common.ts";

const storageMb = (s: { storageMb: number }) => Math.max(1, Math.round(s.storageMb / 30));

export const blobsShape: Shape = {
  name: "blobs",
  describe: (s) => `${s.dbMb} MB db of 64 KB–1 MB blobs (85% random bytes) with a few text columns + ${storageMb(s)} MB storage`,
  folder: (s) => `shape-blobs-${s.dbMb}mb-${storageMb(s)}mb-s${s.seed}`,
  async generate(dir, s) {
    const rand = prng(s.seed * 41 + 1);
    generateDatabase(dir, s.dbMb, (db) => {
      db.run("CREATE TABLE blobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, note TEXT, created TEXT NOT NULL, data BLOB NOT NULL)");
      db.run("CREATE INDEX blobs_name ON blobs (name)");
      const insert = db.prepare("INSERT INTO blobs (name, kind, note, created, data) VALUES (?, ?, ?, ?, ?)");
      let i = 0;
      const batch = db.transaction((count: number) => {
        for (let k = 0; k < count; k++, i++) {
          const size = 64 * 1024 + Math.floor(rand() * (1024 - 64) * 1024);
          const random = rand() < 0.85;
          insert.run(`${hex(rand, 6)}.bin`, random ? "application/octet-stream" : "text/plain", words(rand, 12), timestamp(rand), random ? noise(size, s.seed * 65537 + i) : proseBytes(rand, size));
        }
      });
      return () => batch(20);
    });
    const files = prng(s.seed * 41 + 2);
    for (let k = 0, total = 0; total < storageMb(s) * MB; k++) {
      const size = 100 * 1024 + Math.floor(files() * 400 * 1024);
      await writeUpload(join(dir, "storage"), "blobs", `r${hex(files, 7)}`, k % 2 ? `doc_${k}.txt` : `pic_${k}.jpg`, k % 2 ? proseBytes(files, size) : noise(size, k + 1));
      total += size;
    }
  },
  async addChanges(dataDir, percent) {
    const db = createClient({ url: `file:${join(dataDir, "data.db")}` });
    try {
      const result = await db.execute(
        `INSERT INTO blobs (name, kind, note, created, data)
         SELECT lower(hex(randomblob(6))) || '.bin', kind, note, strftime('%Y-%m-%d %H:%M:%fZ', 'now'), randomblob(length(data)) FROM blobs
         WHERE id IN (SELECT id FROM blobs ORDER BY random() LIMIT (SELECT max(1, round(count(*) * ${percent} / 100.0)) FROM blobs))`,
      );
      return result.rowsAffected;
    } finally {
      db.close();
    }
  },
};
