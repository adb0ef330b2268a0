// The `default` shape: the bench's original data set (bench/generate-data.ts, unchanged): records of text and JSON
// with three indexes, and a few hundred uploads, a third random bytes.
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { generateDataSet } from "../generate-data.ts";
import type { Shape } from "./common.ts";

export const defaultShape: Shape = {
  name: "default",
  describe: (s) => `${s.dbMb} MB db of text/JSON rows with 3 indexes + ${s.storageMb} MB storage of a few hundred files, a third random bytes`,
  folder: (s) => `data-${s.dbMb}mb-${s.storageMb}mb-s${s.seed}`,
  // The same folder and generator as `ensureDataSet`, so the cached set serves both.
  generate: (dir, s) => generateDataSet(dir, s),
  addChanges: addRecordChanges,
};

/**
 * `percent` of the database's rows again, as new rows with random titles and e-mails (so every index gets entries
 * all over it) and the current time. Returns the rows added.
 */
export async function addRecordChanges(dataDir: string, percent: number): Promise<number> {
  const db = createClient({ url: `file:${join(dataDir, "data.db")}` });
  try {
    const every = Math.max(1, Math.round(100 / percent));
    const result = await db.execute(
      `INSERT INTO records (title, body, meta, email, created)
       SELECT lower(hex(randomblob(12))), body, meta, 'user' || lower(hex(randomblob(6))) || '@example.com', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
       FROM records WHERE id % ${every} = 0`,
    );
    return result.rowsAffected;
  } finally {
    db.close();
  }
}
