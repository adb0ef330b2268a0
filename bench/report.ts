// The bench's results for people: per data shape, a table of measures with their ratio to pb-style-zip, their
// multiple of the machine's floor and their target; and the floors. Printed by `npm run bench` and written to
// bench/README.md from bench/results/latest.json (`bun bench/report.ts [results.json]` regenerates it without a
// run), so the page is never edited by hand. A results file from before shapes renders through report-legacy.ts.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { EncryptionResults } from "./encryption.ts";
import type { LargeResults } from "./large.ts";
import type { CpuFloors, DiskFloors } from "./floors.ts";
import { resultConditions as legacyConditions, resultTable as legacyTable, type LegacyResults } from "./report-legacy.ts";

const MB = 1024 * 1024;

/** One shape's measures (bench/measure-shape.ts writes them). */
export interface ShapeResults {
  description: string;
  dataSet: { dbBytes: number; storageBytes: number; files: number };
  deflater: string;
  rowsAdded: number;
  changesPercent: number;
  ratios: { backupTime: number; nextBackupTime: number; archiveSize: number; restoreTime: number; restoreAllExtractedTime: number };
  backup: { medianMs: number; pbStyleMedianMs: number };
  nextBackup: { medianMs: number };
  archive: { bytes: number; pbStyleBytes: number; unzipTestOk: boolean };
  restore: { medianMs: number; withLoginMedianMs: number; allExtractedMedianMs: number; pbStyleMedianMs: number };
  /**
   * `restore…`: the restores with everything extracted: VmRSS, VmRSS without the pages of the staged data.db its
   * quick_check maps (what the target judges: clean page cache, not memory the server holds), and RssAnon (own
   * memory, without any mapped file); absent from results older than them.
   */
  peakRss: { firstMb: number; nextMb: number; bigMb?: number; rssBigOverSmall?: number; restoreMb?: number; restoreWithoutDbMb?: number; restoreAnonMb?: number };
  /** `fullUnbounded…`: the FULL probe with BACKSTREAM_FLUSH_AFTER_MB=0 (absent from results older than it). */
  writerStall: { normalMaxGapMs: number; fullMaxGapMs: number; fullUnboundedMaxGapMs?: number; fullUnboundedBackupMs?: number; fullBesideCpMaxGapMs: number; cpMs: number };
  health: { idleP50Ms: number; idleP99Ms: number; busyP50Ms: number; busyP99Ms: number };
  stolenCpuPercent: { firstBackups: number[]; pbStyle: number[]; restores: number[]; pbStyleExtracts: number[] };
  floorMultiples: FloorMultiples;
}

export interface FloorMultiples {
  /** The data set's bytes deflated and hashed at the two-core CPU floor (deflate, then SHA-256), in ms. */
  backupFloorMs: number;
  /** The data set's bytes written at the durable write floor, in ms. */
  restoreFloorMs: number;
  backup: number;
  nextBackup: number;
  pbStyleBackup: number;
  restore: number;
  restoreAllExtracted: number;
  pbStyleExtract: number;
}

/** The fields of a results file the report reads (bench/run.ts writes them; `format: 2`). */
export interface BenchResults {
  format: 2;
  machine: { nproc: number; cpu: string; bun: string; deflater: string; commit: string; date?: string; kernel?: string };
  options: { dbMb: number; storageMb: number; bigDbMb: number; runs: number; quick: boolean; sampleMb: number; changesPercent: number };
  floors: { disk: DiskFloors; cpu: Record<string, CpuFloors> };
  shapes: Record<string, ShapeResults>;
  encryption?: EncryptionResults;
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Each time as a multiple of its floor, for the data set's bytes (data.db and storage/). */
export function floorMultiples(s: Pick<ShapeResults, "dataSet" | "backup" | "nextBackup" | "restore">, disk: DiskFloors, cpu: CpuFloors): FloorMultiples {
  const mb = (s.dataSet.dbBytes + s.dataSet.storageBytes) / MB;
  const backupFloorMs = 1000 * (mb / cpu.deflateMBps + mb / cpu.sha256MBps);
  const restoreFloorMs = (1000 * mb) / disk.durableWriteMedianMBps;
  return {
    backupFloorMs: round(backupFloorMs, 0),
    restoreFloorMs: round(restoreFloorMs, 0),
    backup: round(s.backup.medianMs / backupFloorMs, 2),
    nextBackup: round(s.nextBackup.medianMs / backupFloorMs, 2),
    pbStyleBackup: round(s.backup.pbStyleMedianMs / backupFloorMs, 2),
    restore: round(s.restore.medianMs / restoreFloorMs, 2),
    restoreAllExtracted: round(s.restore.allExtractedMedianMs / restoreFloorMs, 2),
    pbStyleExtract: round(s.restore.pbStyleMedianMs / restoreFloorMs, 2),
  };
}

const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "–");
const met = (good: boolean) => (good ? "yes" : "NO");
const x = (n: number, digits = 2) => `${f(n, digits)}×`;

/** The restore target: ≤ 0.60× pb-style-zip's extraction or ≤ 1.3× the durable-write floor, whichever is larger. */
export const restoreTargetMs = (s: ShapeResults) => Math.max(0.6 * s.restore.pbStyleMedianMs, 1.3 * s.floorMultiples.restoreFloorMs);

/** One row per measure: measure, value, vs pb-style, × floor, target, met. */
export function shapeRows(s: ShapeResults): string[][] {
  const r = s.ratios;
  const m = s.floorMultiples;
  const w = s.writerStall;
  const restoreJudged = s.peakRss.restoreWithoutDbMb ?? s.peakRss.restoreMb ?? 0;
  const peak = Math.max(s.peakRss.firstMb, s.peakRss.nextMb, s.peakRss.bigMb ?? 0, restoreJudged);
  const big = s.peakRss.bigMb === undefined ? "" : `; big db ${f(s.peakRss.bigMb)} MB (${x(s.peakRss.rssBigOverSmall ?? NaN)} the first)`;
  const restored = s.peakRss.restoreMb === undefined
    ? ""
    : s.peakRss.restoreWithoutDbMb === undefined
      ? `, restore ${f(s.peakRss.restoreMb)} MB${s.peakRss.restoreAnonMb === undefined ? "" : ` (own memory ${f(s.peakRss.restoreAnonMb)})`}`
      : `, restore ${f(s.peakRss.restoreWithoutDbMb)} MB (${f(s.peakRss.restoreMb)} with the data.db its check maps, own memory ${f(s.peakRss.restoreAnonMb ?? NaN)})`;
  return [
    ["first backup", `${f(s.backup.medianMs)} ms`, `${x(r.backupTime)} (${f(s.backup.pbStyleMedianMs)} ms)`, `${x(m.backup)} (pb-style ${x(m.pbStyleBackup)})`, "≤ 0.40× pb-style", met(r.backupTime <= 0.4)],
    ["next backup", `${f(s.nextBackup.medianMs)} ms`, x(r.nextBackupTime), x(m.nextBackup), `≤ 0.30× pb-style; ${s.rowsAdded} rows added (${s.changesPercent}%)`, met(r.nextBackupTime <= 0.3)],
    [
      "restore, everything extracted",
      `${f(s.restore.allExtractedMedianMs)} ms`,
      `${x(r.restoreAllExtractedTime)} (${f(s.restore.pbStyleMedianMs)} ms)`,
      `${x(m.restoreAllExtracted)} (pb-style ${x(m.pbStyleExtract)})`,
      `≤ 0.60× pb-style or ≤ 1.3× floor: ≤ ${f(restoreTargetMs(s))} ms`,
      met(s.restore.allExtractedMedianMs <= restoreTargetMs(s)),
    ],
    ["restore onto unchanged uploads", `${f(s.restore.medianMs)} ms`, x(r.restoreTime), x(m.restore), `none; with a login ${f(s.restore.withLoginMedianMs)} ms`, "–"],
    ["archive size", `${f(s.archive.bytes / MB, 1)} MB`, `${x(r.archiveSize, 3)} (${f(s.archive.pbStyleBytes / MB, 1)} MB)`, "", "≤ 1.05× pb-style", met(r.archiveSize <= 1.05)],
    ["peak RSS", `${f(peak)} MB`, "", "", `≤ 256 MB; first ${f(s.peakRss.firstMb)}, next ${f(s.peakRss.nextMb)} MB${restored}${big}`, met(peak <= 256)],
    ["writer stall, NORMAL", `${f(w.normalMaxGapMs, 1)} ms`, "", "", "≤ 20 ms", met(w.normalMaxGapMs <= 20)],
    ["writer stall, FULL", `${f(w.fullMaxGapMs, 1)} ms`, "", `${x(w.fullMaxGapMs / w.fullBesideCpMaxGapMs)} beside cp`, `≤ beside cp + sync of the same bytes: ${f(w.fullBesideCpMaxGapMs, 1)} ms`, met(w.fullMaxGapMs <= w.fullBesideCpMaxGapMs)],
    ...(w.fullUnboundedMaxGapMs === undefined
      ? []
      : [["writer stall, FULL, no write-behind", `${f(w.fullUnboundedMaxGapMs, 1)} ms`, "", `${x(w.fullUnboundedMaxGapMs / w.fullBesideCpMaxGapMs)} beside cp`, "none: what the 16 MiB flushes bound (`BACKSTREAM_FLUSH_AFTER_MB=0`)", "–"]]),
    ["/api/health p99 during a backup", `${f(s.health.busyP99Ms, 1)} ms`, "", "", `< 25 ms; p50 ${f(s.health.busyP50Ms, 1)}, idle p50 ${f(s.health.idleP50Ms, 1)} / p99 ${f(s.health.idleP99Ms, 1)} ms`, met(s.health.busyP99Ms < 25)],
    ["unzip -t accepts the archive", met(s.archive.unzipTestOk), "", "", "yes", met(s.archive.unzipTestOk)],
  ];
}

/** Rows as a Markdown table, padded so it also reads as plain text in a terminal. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((wd) => "-".repeat(wd + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** The table of the shape `name`. */
export function shapeTable(res: BenchResults, name: string): string {
  return table(["measure", "value", "vs pb-style", "× floor", "target", "met"], shapeRows(res.shapes[name]!));
}

/** The machine's floors: the disk's, and the CPU's on each shape's bytes. */
export function floorsTables(res: BenchResults): string {
  const d = res.floors.disk;
  const disk = table(
    ["floor", "figure"],
    [
      [`durable write (${d.fileMb} MB written, fdatasync)`, `${f(d.durableWriteMedianMBps)} MB/s median of ${d.durableWriteMBps.map((v) => f(v)).join(", ")}`],
      ["small durable files (8 KB written, fsync, each)", `${d.smallFilesPerSecond} files/s`],
      [`read (${d.readCold ? "cold: page cache dropped" : "warm: the page cache could not be dropped"})`, `${f(d.readMBps)} MB/s`],
    ],
  );
  const cpu = table(
    ["shape", "sample", "deflate", "zlib level 1", "inflate (zlib)", "SHA-256", "backup floor", "restore floor"],
    Object.entries(res.floors.cpu).map(([name, c]) => {
      const m = res.shapes[name]?.floorMultiples;
      return [
        name,
        `${f(c.sampleMb)} MB`,
        `${f(c.deflateMBps)} MB/s (${c.deflater}, ${f(c.deflateRatio, 2)}:1)`,
        `${f(c.zlib1MBps)} MB/s (${f(c.zlib1Ratio, 2)}:1)`,
        `${f(c.inflateMBps)} MB/s`,
        `${f(c.sha256MBps)} MB/s`,
        m ? `${f(m.backupFloorMs)} ms` : "–",
        m ? `${f(m.restoreFloorMs)} ms` : "–",
      ];
    }),
  );
  return `${disk}\n\nCPU floors, ${res.floors.cpu[Object.keys(res.floors.cpu)[0]!]?.workers ?? 2} workers at once (one per core), MB/s of input over a sample of each shape's bytes; ` +
    `the backup floor is the data set's bytes deflated and then hashed at these speeds, the restore floor the same bytes at the durable write speed:\n\n${cpu}`;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** What a shape's data set was, and the CPU steal while it was measured. */
function shapeConditions(res: BenchResults, name: string): string {
  const s = res.shapes[name]!;
  const { firstBackups, pbStyle, restores, pbStyleExtracts } = s.stolenCpuPercent;
  const steal = firstBackups.length && pbStyle.length
    ? ` CPU time stolen by the hypervisor (median share of ${res.machine.nproc} CPUs): ${f(median(firstBackups))}% during first backups, ${f(median(pbStyle))}% during pb-style-zip's` +
      (restores.length && pbStyleExtracts.length ? `, ${f(median(restores))}% during restores, ${f(median(pbStyleExtracts))}% during its extractions.` : ".")
    : "";
  return `${s.description}: ${f(s.dataSet.dbBytes / MB)} MB db + ${f(s.dataSet.storageBytes / MB)} MB in ${s.dataSet.files} uploads; deflater ${s.deflater}; ` +
    `FULL writer beside \`cp -a\` + \`sync\` of the data set (${f(s.writerStall.cpMs)} ms).${steal}`;
}

function encryptionTable(res: BenchResults): string {
  const e = res.encryption!;
  return table(
    ["measure", "value", "detail", "target", "met"],
    [
      ["encrypted backup / plain", x(e.encryptedBackupTime), `${f(e.backupMedianMs)} ms vs ${f(e.plainBackupMedianMs)} ms, medians of ${e.backupMs.length}; AES-256, first backups`, "≤ 1.15", met(e.encryptedBackupTime <= 1.15)],
      ["encrypted restore / plain", x(e.encryptedRestoreTime), `${f(e.restoreMedianMs)} ms vs ${f(e.plainRestoreMedianMs)} ms, medians of ${e.restoreMs.length}; everything extracted`, "≤ 1.15", met(e.encryptedRestoreTime <= 1.15)],
    ],
  );
}

const METHOD = `# Benchmark

\`npm run bench\` builds data sets of several shapes (cached in the system temp folder, deterministic from
\`--seed\`), measures the machine's floors, and then measures, shape by shape, backstream's server (started as a
process, driven over HTTP) against \`../shared/peers/pb-style-zip\`, PocketBase's own archive algorithm built with
Go, on the same data.

**Shapes** (\`--shapes=default,prose,small-files,blobs,many-tables\`, all by default; sizes scale with
\`--db-mb\` and \`--storage-mb\`, shown here at their defaults of 500 and 300):

- \`default\`: a 500 MB database of text/JSON rows with three indexes, 300 MB of storage in a few hundred files, a
  third random bytes; also a 2 GB database (\`--big-db-mb\`) for peak RSS, and the encryption measurement;
- \`prose\`: a 500 MB database of ~150-word rows drawn from a few dozen words (very compressible) under a random-hex
  TEXT primary key (its index touched all over), a JSON column, a timestamp index; 300 MB of uploads of 20 KB to
  2 MB, a third random bytes;
- \`small-files\`: a 200 MB database beside 50 000 uploads of 1–20 KB (a quarter random bytes) in
  \`storage/<collection>/<record>/<file>\`;
- \`blobs\`: a 500 MB database of 64 KB–1 MB blobs, 85% random bytes, with a few text columns; 10 MB of storage;
- \`many-tables\`: a 400 MB database of 200 tables with 3 indexes each; 10 MB of storage.

**Floors**, measured once at the start: durable write speed (256 MB written and \`fdatasync\`ed, 3 times), small
durable files per second (8 KB written and \`fsync\`ed, 1 000 files), read speed (cold, after dropping the page
cache, where the bench runs as root), and per shape, over a sample of its bytes (\`--sample-mb=64\`), deflate (the
server's ISA-L level 1 where it loads, and \`node:zlib\` level 1), inflate (\`node:zlib\`) and SHA-256, each on two
workers at once. The **× floor** column divides a backup's time by its data set's bytes deflated and hashed at
those speeds (next backups by the same figure, though they deflate only what changed), and a restore's time by the
same bytes written at the durable write speed.

**Per shape**: the first backup (\`POST /api/backups\`, nothing earlier to reuse) against \`pb-style-zip c\`; the next
backup after the app added about 1% new rows (\`--changes-percent\`; small-files also adds 1% new uploads), reusing
the first one's unchanged pieces; restores (\`POST /api/backups/{key}/restore\` until the restored database serves)
with the uploads deleted (everything extracted) and onto the unchanged uploads, against \`pb-style-zip x\`; the
archive's size; the server's peak RSS (VmRSS, sampled every 20 ms) during backups and during the restores with
everything extracted, the restore's judged without the pages of the staged data.db that its \`quick_check\`
maps (clean page cache that VmRSS counts, from \`/proc/<pid>/smaps\`), its VmRSS and own memory (RssAnon) beside it; the longest stall of a writer in another process inserting a row every
5 ms during a backup with \`synchronous=NORMAL\` (what PocketBase sets) and with \`FULL\`, with \`FULL\` again beside a
backup on a server started with \`BACKSTREAM_FLUSH_AFTER_MB=0\` (no write-behind: what the bound is for), and, as
the baseline for FULL, beside a plain \`cp -a\` of the same data set followed by \`sync\`; \`/api/health\` polled every 10 ms, idle and
during the NORMAL writer's backup.

Each timed run starts after \`sync\`; backstream and pb-style-zip take turns; the figures are medians over
\`--runs\`. Absolute times on shared machines are noise; the ratios, measured in one run, are what to compare.
Other flags: \`--runs=3 --seed=1 --big-db-mb=2000 --encryption=false --encryption-runs=3 --server-root=../other-checkout
--cache=/tmp/backstream-bench --json=bench/results/latest.json\`;
\`--large\` (\`--large-db-mb=10240 --large-storage-mb=2048\`) runs only the large run below and writes
\`bench/results/large.json\`: a first and a next backup and a restore on the local store, a backup and a restore on
S3 (s3rver, started by the bench), and an upload of the local archive to S3, whose copy there is hashed against
the archive (over 5 GiB, it crosses S3's single-request copy limit); \`--quick\` makes every shape about 10× smaller
for a smoke run and writes to the temp folder unless \`--json\` says otherwise. Only a run writing
\`bench/results/latest.json\` rewrites this page. On a shared machine, run it under \`flock /tmp/bench.lock\`.

This page is generated from \`bench/results/latest.json\` by \`bench/report.ts\`; do not edit it by hand.
`;

/** bench/README.md for `res`. */
export function benchReadme(res: BenchResults): string {
  const m = res.machine;
  const o = res.options;
  const parts = [
    METHOD,
    `## Latest results\n\n${m.nproc} × ${m.cpu}, Bun ${m.bun}, commit ${m.commit}${m.date ? `, ${m.date.slice(0, 10)}` : ""}; ` +
      `--db-mb=${o.dbMb} --storage-mb=${o.storageMb} --big-db-mb=${o.bigDbMb}, medians of ${o.runs} run${o.runs === 1 ? "" : "s"}${o.quick ? " (quick)" : ""}; ` +
      "restores timed to the restored database serving, with PocketBase's 1 s delay set to 0.",
    `### Floors\n\n${floorsTables(res)}`,
    ...Object.keys(res.shapes).map((name) => `### ${name}\n\n${shapeTable(res, name)}\n\n${shapeConditions(res, name)}`),
    ...(res.encryption ? [`### Encryption (default shape)\n\n${encryptionTable(res)}`] : []),
  ];
  return `${parts.join("\n\n")}\n`;
}

/** bench/README.md for a results file from before shapes: its one table, as it was rendered then. */
function legacyReadme(res: LegacyResults): string {
  return `${METHOD}\n## Latest results\n\nThis results file is from before data shapes and floors (one data set, format 1); its table is shown as it was rendered then.\n\n${legacyTable(res)}\n\n${legacyConditions(res)}\n`;
}

/** The page for any results file: format 2 (shapes), or an older one; a clear error for anything else. */
export function readmeFor(json: unknown, path: string): string {
  const res = json as Partial<BenchResults> & Partial<LegacyResults>;
  if (res.format === 2 && res.shapes) return benchReadme(res as BenchResults);
  if (res.ratios && res.backup && res.restore && res.machine) return legacyReadme(res as LegacyResults);
  throw new Error(`${path} is not a bench results file this report knows (no "format": 2 with "shapes", nor the older top-level "ratios")`);
}

/** The large run's section (`--large`, bench/large.ts), from its results file. */
export function largeSection(file: { machine: { nproc: number; cpu?: string; bun: string; date: string; commit: string }; large: LargeResults }): string {
  const { machine: m, large: l } = file;
  const step = (name: string, st: { ms: number; mbPerS: number; peakRssMb: number; peakAnonMb: number }, detail: string) =>
    [name, `${f(st.ms / 1000, 1)} s`, `${f(st.mbPerS)} MB/s`, `${f(st.peakRssMb)} MB`, `${f(st.peakAnonMb)} MB`, detail, met(st.peakAnonMb <= 256)];
  const next = l.local.nextBackup;
  const rows = [
    step("backup, local", l.local.backup, `archive ${f(l.archiveBytes / MB)} MB`),
    step("next backup, local (1% more rows)", next, next.reuseSkipped ? `block reuse skipped (logged): ${f(next.deflatedMb)} MB deflated` : `${f(next.reusedMb)} MB reused, ${f(next.deflatedMb)} MB deflated`),
    step("restore, local", l.local.restore, "onto the unchanged uploads (copied from the live data)"),
    step("backup, S3 (s3rver)", l.s3.backup, `object ${f(l.s3.objectBytes / MB)} MB`),
    step("restore, S3", l.s3.restore, "ranged GETs, onto the unchanged uploads"),
    step("upload of the archive to S3", l.s3.upload, `checked, then copied past 5 GiB (streamed: s3rver has no UploadPartCopy); the copy's SHA-256 ${l.s3.upload.copyMatches ? "matches" : "does NOT match"}`),
  ];
  return `### Large run (\`--large\`)\n\n${m.nproc} × ${m.cpu}, Bun ${m.bun}, commit ${m.commit}, ${m.date.slice(0, 10)}; ` +
    `${f(l.dataSet.dbBytes / MB)} MB db (rows of prose beside random blobs) + ${f(l.dataSet.storageBytes / MB)} MB in ${l.dataSet.files} uploads. ` +
    "Throughput is the data set's bytes (the archive's for the upload) per second. Peak RSS is the server's VmRSS; " +
    "own memory is its RssAnon, without the file pages it maps: a restore's and an upload's `quick_check` maps the " +
    "checked data.db (up to 2 GB), which is page cache the kernel can drop, not memory the server holds. The target " +
    "(≤ 256 MB, as at 500 MB) is held against own memory.\n\n" +
    table(["step", "time", "throughput", "peak RSS", "own memory", "detail", "≤ 256 MB"], rows);
}

/** Writes bench/README.md from a results file, with the large run's section where `large.json` lies beside it. */
export async function writeBenchReadme(resultsPath: string, readmePath: string): Promise<void> {
  const page = readmeFor(JSON.parse(await readFile(resultsPath, "utf8")), resultsPath);
  const largePath = join(dirname(resultsPath), "large.json");
  const large = existsSync(largePath) ? `\n${largeSection(JSON.parse(await readFile(largePath, "utf8")))}\n` : "";
  await writeFile(readmePath, page + large);
}

if (import.meta.main) {
  const root = join(import.meta.dir, "..");
  const out = process.argv[3] ?? join(root, "bench/README.md");
  await writeBenchReadme(process.argv[2] ?? join(root, "bench/results/latest.json"), out);
}
