// `npm run bench`: backstream against pb-style-zip on several data shapes (bench/shapes/), with the machine's
// floors measured first (bench/floors.ts); method and latest tables in bench/README.md (bench/report.ts).
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { cpus, release, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseFlags } from "../src/config.ts";
import { measureEncryption, type EncryptionResults } from "./encryption.ts";
import { measureCpuFloors, measureDiskFloors, type CpuFloors } from "./floors.ts";
import { ensureDataSet } from "./generate-data.ts";
import { measureLarge } from "./large.ts";
import { measureShape } from "./measure-shape.ts";
import { floorMultiples, shapeTable, writeBenchReadme } from "./report.ts";
import { login, startServerProcess } from "./server-process.ts";
import { ensureShape, selectShapes, type ShapeSizes } from "./shapes/index.ts";
import { backupOnce, copyDataSet, forgetIndexes, log, median, MB, ROOT, run, settle } from "./steps.ts";

const DEFAULT_JSON = join(ROOT, "bench/results/latest.json");
const DEFAULT_LARGE_JSON = join(ROOT, "bench/results/large.json");
const { flags } = parseFlags(process.argv.slice(2));
/** `--quick`: every shape about 10× smaller, for a smoke run; its results go to the temp folder unless --json says. */
const quick = flags.quick !== undefined && flags.quick !== "false";
const opts = {
  quick,
  shapes: selectShapes(flags.shapes).map((s) => s.name),
  dbMb: Number(flags["db-mb"] ?? (quick ? 50 : 500)),
  storageMb: Number(flags["storage-mb"] ?? (quick ? 30 : 300)),
  bigDbMb: Number(flags["big-db-mb"] ?? (quick ? 200 : 2000)),
  runs: Number(flags.runs ?? 3),
  seed: Number(flags.seed ?? 1),
  json: flags.json ?? (quick ? join(tmpdir(), "bench-quick.json") : DEFAULT_JSON),
  cache: flags.cache ?? join(tmpdir(), "backstream-bench"),
  /** Another checkout of backstream whose server to measure (for before/after comparisons); this one by default. */
  serverRoot: flags["server-root"] ?? ROOT,
  /** Rows added between a backup and the next one, in percent of the database's rows: an app's day of writes. */
  changesPercent: Number(flags["changes-percent"] ?? 1),
  /** MB of each shape's bytes the CPU floors are measured over. */
  sampleMb: Number(flags["sample-mb"] ?? (quick ? 16 : 64)),
  /** Set to false to skip the encryption measurement on the default shape. */
  encryption: flags.encryption !== "false",
  /** Encrypted and plain backup-and-restore pairs; as many as `--runs` unless told. */
  encryptionRuns: Number(flags["encryption-runs"] ?? flags.runs ?? 3),
};

async function buildPbStyle(): Promise<string | undefined> {
  const source = join(ROOT, "../shared/peers/pb-style-zip");
  const binary = join(opts.cache, "pb-style-zip");
  if (existsSync(binary)) return binary;
  if (!existsSync(source) || !Bun.which("go")) return undefined;
  await run(["sh", "-c", `cd ${source} && go build -o ${binary} .`]);
  return binary;
}

/** Peak RSS of first backups of the large database (`--big-db-mb`), on a fresh server. */
async function measureBigRss(bigSet: string, work: string) {
  await copyDataSet(bigSet, work);
  const server = await startServerProcess(work, opts.serverRoot);
  try {
    const token = await login(server.url);
    const rss: number[] = [];
    const ms: number[] = [];
    for (let i = 0; i < Math.min(2, opts.runs); i++) {
      await forgetIndexes(work);
      await settle();
      const b = await backupOnce(server, token, `big_${i}.zip`);
      rss.push(b.peakRss);
      ms.push(b.ms);
      await rm(join(work, "backups", `big_${i}.zip`), { force: true });
      log(`[default] big backup ${i}: ${b.ms.toFixed(0)} ms, peak RSS ${(b.peakRss / MB).toFixed(0)} MB`);
    }
    return { bigMb: Math.max(...rss) / MB, bigBackupMedianMs: median(ms) };
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** `--large`: only the large run (bench/large.ts), its results beside the shapes' and on bench/README.md. */
async function mainLarge() {
  await mkdir(opts.cache, { recursive: true });
  const large = await measureLarge({
    cache: opts.cache,
    dbMb: Number(flags["large-db-mb"] ?? 10_240),
    storageMb: Number(flags["large-storage-mb"] ?? 2_048),
    seed: opts.seed,
    serverRoot: opts.serverRoot,
  });
  const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: opts.serverRoot }).stdout.toString().trim();
  const json = flags.json ?? DEFAULT_LARGE_JSON;
  await mkdir(dirname(json), { recursive: true });
  await writeFile(json, `${JSON.stringify({ format: 1, machine: { nproc: cpus().length, cpu: cpus()[0]?.model, bun: Bun.version, date: new Date().toISOString(), commit }, large }, null, 2)}\n`);
  log(`wrote ${json}`);
  if (json === DEFAULT_LARGE_JSON && existsSync(DEFAULT_JSON)) {
    await writeBenchReadme(DEFAULT_JSON, join(ROOT, "bench/README.md"));
    log("wrote bench/README.md");
  }
}

async function main() {
  await mkdir(opts.cache, { recursive: true });
  const pbStyle = await buildPbStyle();
  if (!pbStyle) log("pb-style-zip skipped: Go or ../shared/peers/pb-style-zip not found");
  const sizes: ShapeSizes = { dbMb: opts.dbMb, storageMb: opts.storageMb, seed: opts.seed };
  const shapes = selectShapes(opts.shapes.join(","));
  const dataSets: Record<string, string> = {};
  for (const shape of shapes)
    dataSets[shape.name] = await ensureShape(opts.cache, shape, sizes, log);
  const bigSet = shapes.some((s) => s.name === "default") ? await ensureDataSet(opts.cache, { ...sizes, dbMb: opts.bigDbMb }, log) : undefined;

  // The floors, once, before anything is timed: the disk's, then the CPU's over each shape's bytes.
  await settle();
  const disk = await measureDiskFloors(join(opts.cache, `floors-${process.pid}`), log);
  await rm(join(opts.cache, `floors-${process.pid}`), { recursive: true, force: true });
  const cpu: Record<string, CpuFloors> = {};
  for (const shape of shapes) {
    cpu[shape.name] = await measureCpuFloors(dataSets[shape.name]!, opts.sampleMb);
    const c = cpu[shape.name]!;
    log(`floors [${shape.name}]: deflate ${c.deflater} ${c.deflateMBps} MB/s (${c.deflateRatio}:1), zlib-1 ${c.zlib1MBps} MB/s (${c.zlib1Ratio}:1), inflate ${c.inflateMBps} MB/s, SHA-256 ${c.sha256MBps} MB/s on ${c.workers} workers`);
  }
  const floors = { disk, cpu };

  const work = join(opts.cache, `work-${process.pid}`);
  const out = join(opts.cache, `out-${process.pid}`);
  await mkdir(out, { recursive: true });
  const results: Record<string, unknown> = {};
  const shapeResults: Record<string, Record<string, unknown>> = {};
  let encryption: EncryptionResults | undefined;
  try {
    for (const shape of shapes) {
      const started = performance.now();
      const measured = await measureShape(shape, dataSets[shape.name]!, {
        runs: opts.runs,
        changesPercent: opts.changesPercent,
        serverRoot: opts.serverRoot,
        pbStyle,
        work,
        out,
        idleMs: opts.quick ? 1000 : 2000,
        ...(shape.name === "default" && opts.encryption
          ? {
              after: async (server, token) => {
                encryption = await measureEncryption(server, token, work, opts.encryptionRuns, log);
                return `encrypted backup ${encryption.encryptedBackupTime}× plain, restore ${encryption.encryptedRestoreTime}×`;
              },
            }
          : {}),
      });
      measured.description = shape.describe(sizes);
      if (shape.name === "default" && bigSet) {
        const big = await measureBigRss(bigSet, work);
        const peak = measured.peakRss as Record<string, number>;
        Object.assign(peak, big, { rssBigOverSmall: Math.round((big.bigMb / peak.firstMb!) * 1000) / 1000 });
      }
      measured.floorMultiples = floorMultiples(measured as never, floors.disk, floors.cpu[shape.name]!);
      shapeResults[shape.name] = measured;
      log(`[${shape.name}] measured in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }

    Object.assign(results, {
      format: 2,
      machine: {
        nproc: cpus().length,
        cpu: cpus()[0]?.model,
        kernel: release(),
        bun: Bun.version,
        deflater: (shapeResults.default ?? Object.values(shapeResults)[0])?.deflater ?? "unknown",
        date: new Date().toISOString(),
        commit: Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: opts.serverRoot }).stdout.toString().trim(),
      },
      options: { ...opts, restoreDelayMs: 0 },
      floors,
      shapes: shapeResults,
      ...(encryption ? { encryption } : {}),
    });
    for (const name of Object.keys(shapeResults)) console.log(`\n## ${name}\n\n${shapeTable(results as never, name)}`);
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

if (flags.large !== undefined && flags.large !== "false") await mainLarge();
else await main();
