// The bench's steps against a running server, shared by the per-shape measurement and the encryption one:
// timed commands, backups and restores through the API, the writer probe, and the small statistics.
import { readdirSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { logLineField } from "../test/support/test-server.ts";
import { measureSteal } from "./cpu-steal.ts";
import { login, sampleRss, watchNextJob, type ServerProcess } from "./server-process.ts";

export const MB = 1024 * 1024;
export const ROOT = join(import.meta.dir, "..");
export const log = (line: string) => console.error(`[bench] ${line}`);

export const median = (values: number[]) => {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

export async function run(cmd: string[]): Promise<number> {
  const started = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed: ${await new Response(proc.stderr).text()}`);
  return performance.now() - started;
}

/** `run`, adding to `stolen` the hypervisor's steal during it, where it can be read (`cpu-steal.ts`). */
export async function runNotingSteal(cmd: string[], stolen: number[]): Promise<number> {
  const steal = measureSteal();
  const ms = await run(cmd);
  const percent = steal.stop();
  if (percent !== undefined) stolen.push(percent);
  return ms;
}

/**
 * Writes the page cache's dirty pages to disk before a timed run. Why: pb-style-zip never syncs what it writes,
 * while backstream syncs its archives and restored files before it answers; without this, whichever ran next
 * paid for the writeback of the 300–800 MB the run before had left dirty (a next backup right after a fresh copy
 * of the data set: 2.9–3.3 s, against 2.1–2.4 s after a sync). Each run still pays for its own writes.
 */
export const settle = () => run(["sync"]);

export async function copyDataSet(from: string, to: string) {
  await rm(to, { recursive: true, force: true });
  await run(["cp", "-a", from, to]);
}

/** The bytes of a data set: data.db, and storage/'s files and their count. */
export function dataSetBytes(dir: string): { dbBytes: number; storageBytes: number; files: number } {
  let storageBytes = 0;
  let files = 0;
  for (const entry of readdirSync(join(dir, "storage"), { recursive: true, withFileTypes: true }))
    if (entry.isFile()) {
      storageBytes += statSync(join(entry.parentPath, entry.name)).size;
      files++;
    }
  return { dbBytes: statSync(join(dir, "data.db")).size, storageBytes, files };
}

export async function backupOnce(server: ServerProcess, token: string, name: string): Promise<{ ms: number; peakRss: number; stolenPct?: number }> {
  const rss = sampleRss(server.pid);
  const steal = measureSteal();
  const started = performance.now();
  const response = await fetch(`${server.url}/api/backups`, {
    method: "POST",
    headers: { Authorization: token, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const ms = performance.now() - started;
  const peakRss = rss.stop();
  const stolenPct = steal.stop();
  if (response.status !== 204) throw new Error(`backup failed: ${response.status} ${await response.text()}\n${server.output()}`);
  return { ms, peakRss, ...(stolenPct === undefined ? {} : { stolenPct }) };
}

/** What the server logged as `field` on its last line with `event` (and `key`, when given): a number or a word. */
export function loggedValue(server: ServerProcess, event: string, field: string, key = ""): string | undefined {
  const line = server.output().split("\n").findLast((l) => l.includes(event) && l.includes(key)) ?? "";
  return logLineField(line, field);
}

export const loggedNumber = (server: ServerProcess, event: string, field: string, key = "") => Number(loggedValue(server, event, field, key) ?? NaN);

/** "… MB reused, … MB deflated" for the backup `key`, from the server's log line for it. */
export function reuseLine(server: ServerProcess, key: string): string {
  const mb = (field: string) => (loggedNumber(server, "backup created", field, key) / MB).toFixed(1);
  return `${mb("reusedBytes")} MB reused, ${mb("deflatedBytes")} MB deflated`;
}

/** Makes the next backup start from nothing, as the first one on a server does: no earlier backup's index. */
export const forgetIndexes = (dataDir: string) => rm(join(dataDir, "backups", ".blocks"), { recursive: true, force: true });

/** `canBackup` as `/api/health` tells it to the bearer of `token`: undefined once the token is refused. */
async function canBackup(url: string, token: string): Promise<boolean | undefined> {
  const response = await fetch(`${url}/api/health`, { headers: { Authorization: token } });
  if (response.status !== 200) throw new Error(`/api/health answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { data: { canBackup?: boolean } }).data.canBackup;
}

/**
 * One restore through the API: `ms` runs from the POST to the database reopened and serving; `withLoginMs` on to
 * the first login that works, with the server free for a backup again.
 */
export async function restoreOnce(server: ServerProcess, token: string, name: string): Promise<{ ms: number; withLoginMs: number; stolenPct?: number }> {
  const before = server.output().length;
  // The job's end comes from the server's event stream, not from polling: a poll every few ms took CPU from the
  // restore it timed (and pb-style-zip's extraction has no observer).
  const watch = await watchNextJob(server.url, token, "restore", name);
  const steal = measureSteal();
  const started = performance.now();
  try {
    const response = await fetch(`${server.url}/api/backups/${name}/restore`, { method: "POST", headers: { Authorization: token } });
    if (response.status !== 204) throw new Error(`restore failed: ${response.status} ${await response.text()}`);
    const job = await watch.done;
    if (job.phase !== "done") throw new Error(`restore failed: ${job.error}\n${server.output().slice(before)}`);
  } finally {
    watch.close();
  }
  // The job ends once the restored database is open again and the token secret rotated: the old token is
  // refused from then on. Checked here, inside the time. A login costs about 100 ms of argon2 on the server,
  // which is not restore work (pb-style-zip's time has nothing like it), so it is timed apart, as `withLoginMs`.
  if ((await canBackup(server.url, token)) !== undefined) throw new Error("the old token still works after the restore finished");
  const ms = performance.now() - started;
  const stolenPct = steal.stop();
  const fresh = await login(server.url);
  while ((await canBackup(server.url, fresh)) !== true) await Bun.sleep(5);
  const withLoginMs = performance.now() - started;
  const output = server.output().slice(before);
  if (/restore failed/.test(output)) throw new Error(`restore failed:\n${output}`);
  return { ms, withLoginMs, ...(stolenPct === undefined ? {} : { stolenPct }) };
}

/**
 * `restoreOnce`, then a new login (the restore rotated the token secret) and the replaced data's trash cleared
 * (it waits there until the next start), so that repeated restores do not fill the disk.
 */
export async function restoreAndLogin(server: ServerProcess, name: string, work: string, token: string) {
  const restored = await restoreOnce(server, token, name);
  const newToken = await login(server.url);
  await rm(join(work, ".pb_temp_to_delete"), { recursive: true, force: true });
  return { restored, token: newToken };
}

/** A writer in its own process inserting a row into `dbPath` every 5 ms with `PRAGMA synchronous=<sync>` (writer-probe.ts). */
export async function startWriter(dbPath: string, sync: string): Promise<{ stop(): Promise<{ maxGapMs: number; inserts: number }> }> {
  const probe = Bun.spawn([process.execPath, join(ROOT, "bench/writer-probe.ts"), dbPath, "5", sync], { cwd: ROOT, stdout: "pipe" });
  const out = probe.stdout.getReader();
  await out.read(); // {"ready":true}
  await Bun.sleep(300);
  return {
    async stop() {
      probe.kill("SIGTERM");
      let text = "";
      for (;;) {
        const { value, done } = await out.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      return JSON.parse(text.trim().split("\n").at(-1)!) as { maxGapMs: number; inserts: number };
    },
  };
}

/** ", 12% of the CPU stolen" for a log line, or nothing where steal cannot be read. */
export function stolenNote(percent: number | undefined): string {
  return percent === undefined ? "" : `, ${percent.toFixed(0)}% of the CPU stolen`;
}
