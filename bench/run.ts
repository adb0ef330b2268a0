// `npm run bench`: backstream against pb-style-zip on a generated data set; method and latest tables in bench/README.md.
import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createClient } from "@libsql/client";
import { parseFlags } from "../src/config.ts";
import { measureSteal } from "./cpu-steal.ts";
import { resultConditions, resultTable, writeBenchReadme, type BenchResults } from "./report.ts";
import { ensureDataSet } from "./generate-data.ts";
import { login, pingHealth, sampleRss, startServerProcess, watchNextJob, type ServerProcess } from "./server-process.ts";
import { logLineField } from "../test/support/test-server.ts";

const ROOT = join(import.meta.dir, "..");
const DEFAULT_JSON = join(ROOT, "bench/results/latest.json");
const { flags } = parseFlags(process.argv.slice(2));
const opts = {
  dbMb: Number(flags["db-mb"] ?? 500),
  storageMb: Number(flags["storage-mb"] ?? 300),
  bigDbMb: Number(flags["big-db-mb"] ?? 2000),
  runs: Number(flags.runs ?? 3),
  seed: Number(flags.seed ?? 1),
  json: flags.json ?? DEFAULT_JSON,
  cache: flags.cache ?? join(tmpdir(), "backstream-bench"),
  /** Another checkout of backstream whose server to measure (for before/after comparisons); this one by default. */
  serverRoot: flags["server-root"] ?? ROOT,
  /** The writer probe's `PRAGMA synchronous`: NORMAL is what PocketBase sets on its own databases. */
  probeSync: flags["probe-sync"] ?? "NORMAL",
  /** Rows added between a backup and the next one, in percent of the database's rows: an app's day of writes. */
  changesPercent: Number(flags["changes-percent"] ?? 1),
};
const log = (line: string) => console.error(`[bench] ${line}`);
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const MB = 1024 * 1024;

async function run(cmd: string[]): Promise<number> {
  const started = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed: ${await new Response(proc.stderr).text()}`);
  return performance.now() - started;
}

/** `run`, adding to `stolen` the hypervisor's steal during it, where it can be read (`cpu-steal.ts`). */
async function runNotingSteal(cmd: string[], stolen: number[]): Promise<number> {
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
const settle = () => run(["sync"]);

async function buildPbStyle(): Promise<string | undefined> {
  const source = join(ROOT, "../shared/peers/pb-style-zip");
  const binary = join(opts.cache, "pb-style-zip");
  if (existsSync(binary)) return binary;
  if (!existsSync(source) || !Bun.which("go")) return undefined;
  await run(["sh", "-c", `cd ${source} && go build -o ${binary} .`]);
  return binary;
}

async function copyDataSet(from: string, to: string) {
  await rm(to, { recursive: true, force: true });
  await run(["cp", "-a", from, to]);
}

async function backupOnce(server: ServerProcess, token: string, name: string): Promise<{ ms: number; peakRss: number; stolenPct?: number }> {
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

/**
 * What an app writes between two backups: `percent` of the database's rows again, as new rows with random
 * titles and e-mails (so every index gets entries all over it) and the current time. Returns the rows added.
 */
async function addChanges(dataDir: string, percent: number): Promise<number> {
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

/** What the server logged as `field` on its last line with `event` (and `key`, when given): a number or a word. */
function loggedValue(server: ServerProcess, event: string, field: string, key = ""): string | undefined {
  const line = server.output().split("\n").findLast((l) => l.includes(event) && l.includes(key)) ?? "";
  return logLineField(line, field);
}

const loggedNumber = (server: ServerProcess, event: string, field: string, key = "") => Number(loggedValue(server, event, field, key) ?? NaN);

/** "… MB reused, … MB deflated" for the backup `key`, from the server's log line for it. */
function reuseLine(server: ServerProcess, key: string): string {
  const mb = (field: string) => (loggedNumber(server, "backup created", field, key) / MB).toFixed(1);
  return `${mb("reusedBytes")} MB reused, ${mb("deflatedBytes")} MB deflated`;
}

/** Makes the next backup start from nothing, as the first one on a server does: no earlier backup's index. */
const forgetIndexes = (dataDir: string) => rm(join(dataDir, "backups", ".blocks"), { recursive: true, force: true });

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
async function restoreOnce(server: ServerProcess, token: string, name: string): Promise<{ ms: number; withLoginMs: number; stolenPct?: number }> {
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

async function main() {
  await mkdir(opts.cache, { recursive: true });
  const pbStyle = await buildPbStyle();
  if (!pbStyle) log("pb-style-zip skipped: Go or ../shared/peers/pb-style-zip not found");
  const dataSet = await ensureDataSet(opts.cache, { dbMb: opts.dbMb, storageMb: opts.storageMb, seed: opts.seed }, log);
  const bigSet = await ensureDataSet(opts.cache, { dbMb: opts.bigDbMb, storageMb: opts.storageMb, seed: opts.seed }, log);
  const work = join(opts.cache, `work-${process.pid}`);
  const out = join(opts.cache, `out-${process.pid}`);
  await mkdir(out, { recursive: true });
  const results: Record<string, unknown> = {};
  try {
    await copyDataSet(dataSet, work);
    let server = await startServerProcess(work, opts.serverRoot);
    let token = await login(server.url);

    // 1. Backup, alternating backstream and pb-style-zip so that noise hits both alike. Each round: a first
    // backup (nothing earlier to reuse), pb-style-zip, the app's writes, then the next backup, which reuses the
    // first one's unchanged pieces (bench/README.md).
    const backupMs: number[] = [];
    const nextBackupMs: number[] = [];
    const pbCreateMs: number[] = [];
    /** The hypervisor's steal during each first backup and each pb-style-zip run (`cpu-steal.ts`). */
    const backupStolen: number[] = [];
    const pbStolen: number[] = [];
    const smallRss: number[] = [];
    const nextRss: number[] = [];
    let rowsAdded = 0;
    for (let i = 0; i < opts.runs; i++) {
      const name = `bench_${i}.zip`;
      await forgetIndexes(work);
      await settle();
      const b = await backupOnce(server, token, name);
      backupMs.push(b.ms);
      smallRss.push(b.peakRss);
      if (b.stolenPct !== undefined) backupStolen.push(b.stolenPct);
      if (pbStyle) {
        await settle();
        pbCreateMs.push(await runNotingSteal([pbStyle, "c", work, join(out, "pb.zip")], pbStolen));
        if (i < opts.runs - 1) await rm(join(out, "pb.zip"));
      }
      rowsAdded = await addChanges(work, opts.changesPercent);
      await settle();
      const next = await backupOnce(server, token, `bench_next_${i}.zip`);
      nextBackupMs.push(next.ms);
      nextRss.push(next.peakRss);
      await rm(join(work, "backups", `bench_next_${i}.zip`), { force: true });
      if (i > 0) await rm(join(work, "backups", name), { force: true });
      log(
        `backup ${i}: ${b.ms.toFixed(0)} ms (deflated with ${loggedValue(server, "backup created", "deflater", name)}), peak RSS ${(b.peakRss / MB).toFixed(0)} MB${stolenNote(b.stolenPct)}; ` +
          `pb-style ${pbCreateMs.at(-1)?.toFixed(0)} ms${stolenNote(pbStolen.at(-1))}; ` +
          `next backup after ${rowsAdded} new rows ${next.ms.toFixed(0)} ms, peak RSS ${(next.peakRss / MB).toFixed(0)} MB (${reuseLine(server, `bench_next_${i}.zip`)})`,
      );
    }
    const deflater = loggedValue(server, "backup created", "deflater", "bench_0.zip") ?? "unknown";
    const archive = join(work, "backups", "bench_0.zip");
    const archiveBytes = statSync(archive).size;
    const pbArchiveBytes = pbStyle ? statSync(join(out, "pb.zip")).size : NaN;
    const verify = Bun.spawnSync(["unzip", "-tq", archive]);
    const unzipOk = verify.exitCode === 0;
    if (!unzipOk) log(`unzip -t refused the archive: ${verify.stdout.toString()}${verify.stderr.toString()}`);

    // 4 + 5. One more backup with a writer inserting every 5 ms and /api/health polled every 10 ms.
    await settle();
    const idlePing = pingHealth(server.url, token);
    await Bun.sleep(2000);
    const idleLatencies = await idlePing.stop();
    const probe = Bun.spawn([process.execPath, join(ROOT, "bench/writer-probe.ts"), join(work, "data.db"), "5", opts.probeSync], { cwd: ROOT, stdout: "pipe" });
    const probeOut = probe.stdout.getReader();
    await probeOut.read(); // {"ready":true}
    await Bun.sleep(300);
    const busyPing = pingHealth(server.url, token);
    await forgetIndexes(work); // the heaviest case: everything deflated
    const probed = await backupOnce(server, token, "bench_probe.zip");
    const busyLatencies = await busyPing.stop();
    probe.kill("SIGTERM");
    let probeText = "";
    for (;;) {
      const { value, done } = await probeOut.read();
      if (done) break;
      probeText += new TextDecoder().decode(value);
    }
    const stall = JSON.parse(probeText.trim().split("\n").at(-1)!) as { maxGapMs: number; inserts: number };
    await rm(join(work, "backups", "bench_probe.zip"), { force: true });
    log(`writer stall ${stall.maxGapMs.toFixed(1)} ms over ${stall.inserts} inserts; backup under load ${probed.ms.toFixed(0)} ms`);

    // 2. Restore of bench_0.zip, against pb-style-zip extracting the same archive: onto the data directory it
    // came from, whose uploads are unchanged (copied, not extracted), and with the uploads deleted (all extracted).
    const restoreMs: number[] = [];
    const restoreWithLoginMs: number[] = [];
    const restoreAllMs: number[] = [];
    const pbExtractMs: number[] = [];
    const restoreStolen: number[] = [];
    const pbExtractStolen: number[] = [];
    const restoreAndLogin = async () => {
      const restored = await restoreOnce(server, token, "bench_0.zip");
      if (restored.stolenPct !== undefined) restoreStolen.push(restored.stolenPct);
      token = await login(server.url);
      // The replaced data waits in the trash until the next start; clear it so the disk does not fill up.
      await rm(join(work, ".pb_temp_to_delete"), { recursive: true, force: true });
      return restored;
    };
    const ontoUploads = async () => {
      await settle();
      const restored = await restoreAndLogin();
      restoreMs.push(restored.ms);
      restoreWithLoginMs.push(restored.withLoginMs);
      const copied = loggedNumber(server, "backup restored", "copiedFromLive");
      return `onto its uploads ${restored.ms.toFixed(0)} ms (${restored.withLoginMs.toFixed(0)} ms to a working login; ${copied} uploads copied${stolenNote(restored.stolenPct)})`;
    };
    const withoutUploads = async () => {
      await rm(join(work, "storage"), { recursive: true });
      await settle();
      const restored = await restoreAndLogin();
      restoreAllMs.push(restored.ms);
      return `with the uploads deleted ${restored.ms.toFixed(0)} ms (${loggedNumber(server, "backup restored", "copiedFromLive")} uploads copied${stolenNote(restored.stolenPct)})`;
    };
    for (let i = 0; i < opts.runs; i++) {
      // The two take turns going first: the second of a pair ran faster or slower for its place alone.
      const restores = i % 2 === 0 ? [ontoUploads, withoutUploads] : [withoutUploads, ontoUploads];
      for (const restore of restores) log(`restore ${i} ${await restore()}`);
      if (pbStyle) {
        const target = join(out, "extract");
        await rm(target, { recursive: true, force: true });
        await settle();
        pbExtractMs.push(await runNotingSteal([pbStyle, "x", archive, target], pbExtractStolen));
        await rm(target, { recursive: true, force: true });
        log(`restore ${i} pb-style extract ${pbExtractMs.at(-1)!.toFixed(0)} ms${stolenNote(pbExtractStolen.at(-1))}`);
      }
    }
    await server.stop();

    // 3. Peak RSS on the big data set, fresh server.
    await copyDataSet(bigSet, work);
    server = await startServerProcess(work, opts.serverRoot);
    token = await login(server.url);
    const bigRss: number[] = [];
    const bigMs: number[] = [];
    for (let i = 0; i < Math.min(2, opts.runs); i++) {
      await forgetIndexes(work); // everything deflated, as in the small set's first backups
      await settle();
      const b = await backupOnce(server, token, `big_${i}.zip`);
      bigRss.push(b.peakRss);
      bigMs.push(b.ms);
      await rm(join(work, "backups", `big_${i}.zip`), { force: true });
      log(`big backup ${i}: ${b.ms.toFixed(0)} ms, peak RSS ${(b.peakRss / MB).toFixed(0)} MB`);
    }
    await server.stop();

    const r = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
    Object.assign(results, {
      machine: {
        nproc: cpus().length,
        cpu: cpus()[0]?.model,
        bun: Bun.version,
        deflater,
        date: new Date().toISOString(),
        commit: Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: opts.serverRoot }).stdout.toString().trim(),
      },
      options: { ...opts, restoreDelayMs: 0 },
      dataSet: { dbMb: opts.dbMb, storageMb: opts.storageMb, bigDbMb: opts.bigDbMb, runs: opts.runs },
      ratios: {
        backupTime: r(median(backupMs), median(pbCreateMs)),
        nextBackupTime: r(median(nextBackupMs), median(pbCreateMs)),
        archiveSize: r(archiveBytes, pbArchiveBytes),
        restoreTime: r(median(restoreMs), median(pbExtractMs)),
        restoreAllExtractedTime: r(median(restoreAllMs), median(pbExtractMs)),
        rssBigOverSmall: r(Math.max(...bigRss), Math.max(...smallRss)),
      },
      backup: { medianMs: median(backupMs), runsMs: backupMs, pbStyleMedianMs: median(pbCreateMs), pbStyleRunsMs: pbCreateMs },
      stolenCpuPercent: { firstBackups: backupStolen, pbStyle: pbStolen, restores: restoreStolen, pbStyleExtracts: pbExtractStolen },
      nextBackup: { medianMs: median(nextBackupMs), runsMs: nextBackupMs, changesPercent: opts.changesPercent, rowsAdded },
      archive: { bytes: archiveBytes, pbStyleBytes: pbArchiveBytes, unzipTestOk: unzipOk },
      restore: { medianMs: median(restoreMs), runsMs: restoreMs, withLoginMedianMs: median(restoreWithLoginMs), withLoginRunsMs: restoreWithLoginMs, allExtractedMedianMs: median(restoreAllMs), allExtractedRunsMs: restoreAllMs, pbStyleMedianMs: median(pbExtractMs), pbStyleRunsMs: pbExtractMs },
      peakRss: { smallMb: Math.max(...smallRss) / MB, bigMb: Math.max(...bigRss) / MB, nextMb: Math.max(...nextRss) / MB, bigBackupMedianMs: median(bigMs) },
      writerStall: { maxGapMs: stall.maxGapMs, inserts: stall.inserts, backupMs: probed.ms },
      health: {
        idleP50Ms: percentile(idleLatencies, 50),
        idleP99Ms: percentile(idleLatencies, 99),
        busyP50Ms: percentile(busyLatencies, 50),
        busyP99Ms: percentile(busyLatencies, 99),
        busySamples: busyLatencies.length,
      },
    });
    const report = results as unknown as BenchResults;
    console.log(`${resultTable(report)}\n\n${resultConditions(report)}`);
    await mkdir(dirname(opts.json), { recursive: true });
    await writeFile(opts.json, `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote ${opts.json}`);
    if (opts.json === DEFAULT_JSON) {
      await writeBenchReadme(opts.json, join(ROOT, "bench/README.md"));
      log("wrote bench/README.md");
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
    for (const name of await readdir(opts.cache)) if (name.endsWith(".tmp")) await rm(join(opts.cache, name), { recursive: true, force: true });
  }
}

/** ", 12% of the CPU stolen" for a log line, or nothing where steal cannot be read. */
function stolenNote(percent: number | undefined): string {
  return percent === undefined ? "" : `, ${percent.toFixed(0)}% of the CPU stolen`;
}

await main();
