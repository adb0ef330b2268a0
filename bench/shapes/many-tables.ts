// The `many-tables` shape: 200 tables with 3 indexes each (800 b-trees), ~0.8× `--db-mb` in all, and little
// storage: the cost of a schema of many small b-trees rather than one large one.
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { dbBytes, generateDatabase, hex, MB, noise, proseBytes, prng, timestamp, words, writeUpload, type Shape } from "./common.ts";

const TABLES = 200;
const dbMb = (s: { dbMb: number }) => Math.max(1, Math.round(s.dbMb * 0.8));
const storageMb = (s: { storageMb: number }) => Math.max(1, Math.round(s.storageMb / 30));
const table = (t: number) => `t_${String(t).padStart(3, "0")}`;

export const manyTablesShape: Shape = {
  name: "many-tables",
  describe: (s) => `${dbMb(s)} MB db of ${TABLES} tables with 3 indexes each + ${storageMb(s)} MB storage`,
  folder: (s) => `shape-many-tables-${dbMb(s)}mb-${storageMb(s)}mb-s${s.seed}`,
  async generate(dir, s) {
    const rand = prng(s.seed * 43 + 1);
    generateDatabase(dir, dbMb(s), (db) => {
      for (let t = 0; t < TABLES; t++) {
        db.run(`CREATE TABLE ${table(t)} (id INTEGER PRIMARY KEY, code TEXT NOT NULL, title TEXT, amount INTEGER, body TEXT, created TEXT NOT NULL)`);
        db.run(`CREATE INDEX ${table(t)}_code ON ${table(t)} (code)`);
        db.run(`CREATE INDEX ${table(t)}_amount ON ${table(t)} (amount, created)`);
        db.run(`CREATE INDEX ${table(t)}_title ON ${table(t)} (title)`);
      }
      const inserts = Array.from({ length: TABLES }, (_, t) => db.prepare(`INSERT INTO ${table(t)} (code, title, amount, body, created) VALUES (?, ?, ?, ?, ?)`));
      // Rows go to the tables in turn, so each table's pages end up spread over the file, as an app's do.
      const batch = db.transaction((rounds: number) => {
        for (let r = 0; r < rounds; r++)
          for (const insert of inserts) insert.run(hex(rand, 6), words(rand, 5), Math.floor(rand() * 1e6), words(rand, 20 + Math.floor(rand() * 60)), timestamp(rand));
      });
      return () => batch(20);
    });
    const files = prng(s.seed * 43 + 2);
    for (let k = 0, total = 0; total < storageMb(s) * MB; k++) {
      const size = 50 * 1024 + Math.floor(files() * 200 * 1024);
      await writeUpload(join(dir, "storage"), table(k % TABLES), `r${hex(files, 7)}`, k % 3 ? `doc_${k}.txt` : `pic_${k}.jpg`, k % 3 ? proseBytes(files, size) : noise(size, k + 1));
      total += size;
    }
  },
  async addChanges(dataDir, percent) {
    const db = createClient({ url: `file:${join(dataDir, "data.db")}` });
    try {
      let rows = 0;
      const statements = Array.from({ length: TABLES }, (_, t) => ({
        sql: `INSERT INTO ${table(t)} (code, title, amount, body, created)
              SELECT lower(hex(randomblob(6))), title, abs(random() % 1000000), body, strftime('%Y-%m-%d %H:%M:%fZ', 'now') FROM ${table(t)}
              WHERE id IN (SELECT id FROM ${table(t)} ORDER BY random() LIMIT (SELECT max(1, round(count(*) * ${percent} / 100.0)) FROM ${table(t)}))`,
      }));
      for (const result of await db.batch(statements, "write")) rows += result.rowsAffected;
      return rows;
    } finally {
      db.close();
    }
  },
};
