// A separate process that writes to data.db the way an app would, one row every few milliseconds, and
// reports how long its slowest write waited. Runs until its stdin closes; prints JSON stats on stdout.
import { createClient } from "@libsql/client";

const [path, intervalArg = "3"] = process.argv.slice(2);
const interval = Number(intervalArg);
const db = createClient({ url: `file:${path}` });
await db.execute("PRAGMA journal_mode=WAL");
await db.execute("PRAGMA busy_timeout=10000");
await db.execute("CREATE TABLE IF NOT EXISTS ticks (n INTEGER PRIMARY KEY, at REAL NOT NULL)");
let n = Number((await db.execute("SELECT coalesce(max(n), 0) FROM ticks")).rows[0]![0]);
let stop = false;
let longestWrite = 0;
let writes = 0;
process.stdin.on("data", () => {});
process.stdin.on("end", () => (stop = true));
console.log(JSON.stringify({ ready: true }));
while (!stop) {
  const started = performance.now();
  await db.execute({ sql: "INSERT INTO ticks (n, at) VALUES (?, ?)", args: [++n, Date.now()] });
  longestWrite = Math.max(longestWrite, performance.now() - started);
  writes++;
  await new Promise((resolve) => setTimeout(resolve, interval));
}
db.close();
console.log(JSON.stringify({ writes, last: n, longestWriteMs: longestWrite }));
