// One data shape measured against pb-style-zip on the same data, on a fresh server over a copy of the data set:
// first and next backups, archive size, the writer probes (NORMAL and FULL beside a backup, FULL beside one
// without write-behind and beside a plain `cp` of the same bytes) with /api/health latency, and restores onto unchanged uploads and with the uploads
// deleted. Backstream and pb-style-zip take turns, every timed run after `sync`, medians over `runs`.
import { statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { login, pingHealth, sampleRss, startServerProcess, type ServerProcess } from "./server-process.ts";
import type { Shape } from "./shapes/index.ts";
import {
  backupOnce,
  copyDataSet,
  dataSetBytes,
  forgetIndexes,
  log,
  loggedNumber,
  loggedValue,
  median,
  percentile,
  restoreAndLogin,
  reuseLine,
  run,
  runNotingSteal,
  settle,
  startWriter,
  stolenNote,
  MB,
} from "./steps.ts";

export interface ShapeRunOptions {
  runs: number;
  changesPercent: number;
  serverRoot: string;
  pbStyle?: string;
  work: string;
  out: string;
  /** Milliseconds of idle /api/health polling before the busy one. */
  idleMs: number;
  /** Runs on the same server after the restores (the encryption measurement, on the default shape). */
  after?: (server: ServerProcess, token: string) => Promise<string>;
}

export async function measureShape(shape: Shape, dataSet: string, o: ShapeRunOptions): Promise<Record<string, unknown>> {
  const { work, out, pbStyle } = o;
  const bytes = dataSetBytes(dataSet);
  await copyDataSet(dataSet, work);
  let server = await startServerProcess(work, o.serverRoot);
  let token = await login(server.url);
  const tag = `[${shape.name}]`;
  try {
    // Backups: a first one (nothing earlier to reuse), pb-style-zip, the app's writes, then the next backup.
    const backupMs: number[] = [];
    const nextBackupMs: number[] = [];
    const pbCreateMs: number[] = [];
    const backupStolen: number[] = [];
    const pbStolen: number[] = [];
    const firstRss: number[] = [];
    const nextRss: number[] = [];
    let rowsAdded = 0;
    for (let i = 0; i < o.runs; i++) {
      const name = `bench_${i}.zip`;
      await forgetIndexes(work);
      await settle();
      const b = await backupOnce(server, token, name);
      backupMs.push(b.ms);
      firstRss.push(b.peakRss);
      if (b.stolenPct !== undefined) backupStolen.push(b.stolenPct);
      if (pbStyle) {
        await settle();
        pbCreateMs.push(await runNotingSteal([pbStyle, "c", work, join(out, "pb.zip")], pbStolen));
        if (i < o.runs - 1) await rm(join(out, "pb.zip"));
      }
      rowsAdded = await shape.addChanges(work, o.changesPercent);
      await settle();
      const next = await backupOnce(server, token, `bench_next_${i}.zip`);
      nextBackupMs.push(next.ms);
      nextRss.push(next.peakRss);
      log(
        `${tag} backup ${i}: ${b.ms.toFixed(0)} ms (${loggedValue(server, "backup created", "deflater", name)}), peak RSS ${(b.peakRss / MB).toFixed(0)} MB${stolenNote(b.stolenPct)}; ` +
          `pb-style ${pbCreateMs.at(-1)?.toFixed(0)} ms${stolenNote(pbStolen.at(-1))}; ` +
          `next after ${rowsAdded} new rows ${next.ms.toFixed(0)} ms, peak RSS ${(next.peakRss / MB).toFixed(0)} MB (${reuseLine(server, `bench_next_${i}.zip`)})`,
      );
      await rm(join(work, "backups", `bench_next_${i}.zip`), { force: true });
      if (i > 0) await rm(join(work, "backups", name), { force: true });
    }
    const deflater = loggedValue(server, "backup created", "deflater", "bench_0.zip") ?? "unknown";
    const archive = join(work, "backups", "bench_0.zip");
    const archiveBytes = statSync(archive).size;
    const pbArchiveBytes = pbStyle ? statSync(join(out, "pb.zip")).size : NaN;
    const verify = Bun.spawnSync(["unzip", "-tq", archive]);
    const unzipOk = verify.exitCode === 0;
    if (!unzipOk) log(`${tag} unzip -t refused the archive: ${verify.stdout.toString()}${verify.stderr.toString()}`);

    // Writer probes: NORMAL (with /api/health polled) and FULL beside a backup with everything deflated, and FULL
    // beside a plain `cp -a` of the data set's bytes followed by `sync` (backstream syncs its archive too).
    await settle();
    const idlePing = pingHealth(server.url, token);
    await Bun.sleep(o.idleMs);
    const idleLatencies = await idlePing.stop();
    const probedBackup = async (sync: string, name: string) => {
      await forgetIndexes(work);
      await settle();
      const writer = await startWriter(join(work, "data.db"), sync);
      const ping = sync === "NORMAL" ? pingHealth(server.url, token) : undefined;
      const probed = await backupOnce(server, token, name);
      const latencies = (await ping?.stop()) ?? [];
      const stall = await writer.stop();
      await rm(join(work, "backups", name), { force: true });
      return { ...stall, backupMs: probed.ms, latencies };
    };
    const normal = await probedBackup("NORMAL", "bench_probe.zip");
    const full = await probedBackup("FULL", "bench_probe_full.zip");
    // The same FULL probe without the write-behind bound (BACKSTREAM_FLUSH_AFTER_MB=0), on a server started for it.
    await server.stop();
    server = await startServerProcess(work, o.serverRoot, { BACKSTREAM_FLUSH_AFTER_MB: "0" });
    token = await login(server.url);
    const fullUnbounded = await probedBackup("FULL", "bench_probe_full.zip");
    await server.stop();
    server = await startServerProcess(work, o.serverRoot);
    token = await login(server.url);
    await settle();
    const cpTarget = join(out, "cp-copy");
    const cpWriter = await startWriter(join(work, "data.db"), "FULL");
    const cpMs = await run(["sh", "-c", 'cp -a "$0" "$1" && sync', dataSet, cpTarget]);
    const besideCp = await cpWriter.stop();
    await rm(cpTarget, { recursive: true, force: true });
    log(
      `${tag} writer stall NORMAL ${normal.maxGapMs.toFixed(1)} ms (${normal.inserts} inserts, backup ${normal.backupMs.toFixed(0)} ms); ` +
        `FULL ${full.maxGapMs.toFixed(1)} ms beside a backup (${full.backupMs.toFixed(0)} ms), ${fullUnbounded.maxGapMs.toFixed(1)} ms without write-behind (${fullUnbounded.backupMs.toFixed(0)} ms), ` +
        `${besideCp.maxGapMs.toFixed(1)} ms beside cp + sync (${cpMs.toFixed(0)} ms)`,
    );

    // Restores of bench_0.zip against pb-style-zip extracting the same archive: onto the data directory it came
    // from (unchanged uploads copied) and with the uploads deleted (everything extracted), taking turns.
    const restoreMs: number[] = [];
    const restoreWithLoginMs: number[] = [];
    const restoreAllMs: number[] = [];
    const pbExtractMs: number[] = [];
    const restoreStolen: number[] = [];
    const pbExtractStolen: number[] = [];
    // The server's peak during the restores with everything extracted, as for backups (VmRSS), without the pages
    // of the staged data.db its quick_check maps (clean page cache that VmRSS counts: what the target judges),
    // and its own memory (RssAnon, without any mapped file).
    const restoreRss: number[] = [];
    const restoreWithoutDb: number[] = [];
    const restoreAnon: number[] = [];
    const restoreBench0 = async () => {
      const { restored, token: next } = await restoreAndLogin(server, "bench_0.zip", work, token);
      token = next;
      if (restored.stolenPct !== undefined) restoreStolen.push(restored.stolenPct);
      return restored;
    };
    const ontoUploads = async () => {
      await settle();
      const restored = await restoreBench0();
      restoreMs.push(restored.ms);
      restoreWithLoginMs.push(restored.withLoginMs);
      return `onto its uploads ${restored.ms.toFixed(0)} ms (${restored.withLoginMs.toFixed(0)} ms to a login; ${loggedNumber(server, "backup restored", "copiedFromLive")} uploads copied${stolenNote(restored.stolenPct)})`;
    };
    const withoutUploads = async () => {
      await rm(join(work, "storage"), { recursive: true, force: true });
      await settle();
      const rss = sampleRss(server.pid);
      const withoutDb = sampleRss(server.pid, 50, "VmRSS-without-db");
      const anon = sampleRss(server.pid, 20, "RssAnon");
      const restored = await restoreBench0();
      restoreRss.push(rss.stop());
      restoreWithoutDb.push(withoutDb.stop());
      restoreAnon.push(anon.stop());
      restoreAllMs.push(restored.ms);
      const mb = (values: number[]) => (values.at(-1)! / MB).toFixed(0);
      return `with the uploads deleted ${restored.ms.toFixed(0)} ms, peak RSS ${mb(restoreRss)} MB (${mb(restoreWithoutDb)} without the mapped data.db, own ${mb(restoreAnon)} MB)${stolenNote(restored.stolenPct)}`;
    };
    for (let i = 0; i < o.runs; i++) {
      for (const restore of i % 2 === 0 ? [ontoUploads, withoutUploads] : [withoutUploads, ontoUploads]) log(`${tag} restore ${i} ${await restore()}`);
      if (pbStyle) {
        const target = join(out, "extract");
        await rm(target, { recursive: true, force: true });
        await settle();
        pbExtractMs.push(await runNotingSteal([pbStyle, "x", archive, target], pbExtractStolen));
        await rm(target, { recursive: true, force: true });
        log(`${tag} restore ${i} pb-style extract ${pbExtractMs.at(-1)!.toFixed(0)} ms${stolenNote(pbExtractStolen.at(-1))}`);
      }
    }
    if (o.after) log(`${tag} ${await o.after(server, token)}`);

    const r = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
    return {
      dataSet: bytes,
      deflater,
      rowsAdded,
      changesPercent: o.changesPercent,
      ratios: {
        backupTime: r(median(backupMs), median(pbCreateMs)),
        nextBackupTime: r(median(nextBackupMs), median(pbCreateMs)),
        archiveSize: r(archiveBytes, pbArchiveBytes),
        restoreTime: r(median(restoreMs), median(pbExtractMs)),
        restoreAllExtractedTime: r(median(restoreAllMs), median(pbExtractMs)),
      },
      backup: { medianMs: median(backupMs), runsMs: backupMs, pbStyleMedianMs: median(pbCreateMs), pbStyleRunsMs: pbCreateMs },
      nextBackup: { medianMs: median(nextBackupMs), runsMs: nextBackupMs },
      archive: { bytes: archiveBytes, pbStyleBytes: pbArchiveBytes, unzipTestOk: unzipOk },
      restore: {
        medianMs: median(restoreMs),
        runsMs: restoreMs,
        withLoginMedianMs: median(restoreWithLoginMs),
        allExtractedMedianMs: median(restoreAllMs),
        allExtractedRunsMs: restoreAllMs,
        pbStyleMedianMs: median(pbExtractMs),
        pbStyleRunsMs: pbExtractMs,
      },
      peakRss: {
        firstMb: Math.max(...firstRss) / MB,
        nextMb: Math.max(...nextRss) / MB,
        restoreMb: Math.max(...restoreRss) / MB,
        restoreWithoutDbMb: Math.max(...restoreWithoutDb) / MB,
        restoreAnonMb: Math.max(...restoreAnon) / MB,
      },
      writerStall: {
        normalMaxGapMs: normal.maxGapMs,
        normalInserts: normal.inserts,
        fullMaxGapMs: full.maxGapMs,
        fullInserts: full.inserts,
        fullUnboundedMaxGapMs: fullUnbounded.maxGapMs,
        fullUnboundedBackupMs: fullUnbounded.backupMs,
        fullBesideCpMaxGapMs: besideCp.maxGapMs,
        fullBesideCpInserts: besideCp.inserts,
        cpMs,
        backupMs: normal.backupMs,
        fullBackupMs: full.backupMs,
      },
      health: {
        idleP50Ms: percentile(idleLatencies, 50),
        idleP99Ms: percentile(idleLatencies, 99),
        busyP50Ms: percentile(normal.latencies, 50),
        busyP99Ms: percentile(normal.latencies, 99),
        busySamples: normal.latencies.length,
      },
      stolenCpuPercent: { firstBackups: backupStolen, pbStyle: pbStolen, restores: restoreStolen, pbStyleExtracts: pbExtractStolen },
    };
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
    await rm(join(out, "pb.zip"), { force: true });
  }
}
