// The `small-files` shape: a database beside tens of thousands of uploads of 1–20 KB (a quarter random bytes),
// nested as PocketBase's storage/<collection>/<record>/<file>: the per-file cost of backup and restore.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { dbBytes, generateDatabase, hex, MB, noise, proseBytes, prng, timestamp, words, writeUpload, type Shape } from "./common.ts";

/** 50 000 uploads at `--storage-mb=300`, as many more or fewer as the storage size scales. */
const fileCount = (storageMb: number) => Math.max(100, Math.round((50_000 * storageMb) / 300));
const dbMb = (s: { dbMb: number }) => Math.max(1, Math.round(s.dbMb * 0.4));

export const smallFilesShape: Shape = {
  name: "small-files",
  describe: (s) => `${dbMb(s)} MB db + ${fileCount(s.storageMb)} uploads of 1–20 KB (a quarter random) in storage/<collection>/<record>/`,
  folder: (s) => `shape-small-files-${dbMb(s)}mb-${fileCount(s.storageMb)}f-s${s.seed}`,
  async generate(dir, s) {
    const rand = prng(s.seed * 37 + 1);
    generateDatabase(dir, dbMb(s), (db) => {
      db.run("CREATE TABLE records (id TEXT PRIMARY KEY NOT NULL, collection TEXT NOT NULL, title TEXT, body TEXT, files JSON, created TEXT NOT NULL)");
      db.run("CREATE INDEX records_created ON records (created)");
      const insert = db.prepare("INSERT INTO records (id, collection, title, body, files, created) VALUES (?, ?, ?, ?, ?, ?)");
      const batch = db.transaction((count: number) => {
        for (let i = 0; i < count; i++) insert.run(hex(rand, 7), `col_${i % 10}`, words(rand, 6), words(rand, 40 + Math.floor(rand() * 200)), "[]", timestamp(rand));
      });
      return () => batch(5000);
    });
    const files = prng(s.seed * 37 + 2);
    const storage = join(dir, "storage");
    let record = "";
    for (let i = 0; i < fileCount(s.storageMb); i++) {
      if (i % 3 === 0) record = `r${hex(files, 7)}`; // about three files a record
      const size = 1024 + Math.floor(files() * 19 * 1024);
      const random = i % 4 === 0;
      const bytes = random ? noise(size, s.seed * 104729 + i) : proseBytes(files, size);
      await writeUpload(storage, `col_${i % 10}`, record, random ? `thumb_${i}.png` : `note_${i}.txt`, bytes);
    }
  },
  async addChanges(dataDir, percent) {
    const db = createClient({ url: `file:${join(dataDir, "data.db")}` });
    let rows = 0;
    try {
      const every = Math.max(1, Math.round(100 / percent));
      const result = await db.execute(
        `INSERT INTO records (id, collection, title, body, files, created)
         SELECT lower(hex(randomblob(8))), collection, title, body, files, strftime('%Y-%m-%d %H:%M:%fZ', 'now') FROM records WHERE rowid % ${every} = 0`,
      );
      rows = result.rowsAffected;
    } finally {
      db.close();
    }
    // As many new uploads as rows, in new records' folders.
    const rand = prng(Date.now() & 0xffff);
    const existing = readdirSync(join(dataDir, "storage"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
    const added = Math.round((existing * percent) / 100);
    for (let i = 0; i < added; i++) {
      await writeUpload(join(dataDir, "storage"), `col_${i % 10}`, `new${hex(rand, 6)}`, `note_new_${i}.txt`, proseBytes(rand, 1024 + Math.floor(rand() * 19 * 1024)));
    }
    return rows;
  },
};
