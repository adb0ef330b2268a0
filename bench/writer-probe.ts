// Run as its own process: inserts a row into data.db every few milliseconds and, on SIGTERM, prints the longest
// gap between two inserts (that is, the longest stall a writer saw) as one JSON line.
import { createClient } from "@libsql/client";

const [path, intervalArg = "5", synchronous = "NORMAL"] = process.argv.slice(2);
const interval = Number(intervalArg);
const db = createClient({ url: `file:${path}` });
await db.execute("PRAGMA busy_timeout=10000");
// PocketBase opens its databases with synchronous=NORMAL (no fsync per commit in WAL mode); FULL is a flag away.
if (!/^(OFF|NORMAL|FULL|EXTRA)$/i.test(synchronous)) throw new Error(`bad synchronous mode ${synchronous}`);
await db.execute(`PRAGMA synchronous=${synchronous}`);
await db.execute("CREATE TABLE IF NOT EXISTS bench_probe (id INTEGER PRIMARY KEY, at REAL)");
let maxGap = 0;
let count = 0;
let last = performance.now();
let running = true;
process.on("SIGTERM", () => {
  running = false;
});
console.log(JSON.stringify({ ready: true }));
while (running) {
  await db.execute({ sql: "INSERT INTO bench_probe (at) VALUES (?)", args: [Date.now()] });
  const now = performance.now();
  maxGap = Math.max(maxGap, now - last);
  count++;
  await new Promise((resolve) => setTimeout(resolve, interval));
  last = performance.now();
}
db.close();
console.log(JSON.stringify({ maxGapMs: maxGap, inserts: count }));
process.exit(0);
