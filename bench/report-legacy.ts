// The report of a results file from before data shapes (format 1: one data set, its measures at the top level),
// so that bench/report.ts still renders an old bench/results/*.json: the table of measures against the targets of
// that time, and the paragraph of conditions under it.
const MB = 1024 * 1024;

/** The fields of a results file the report reads (bench/run.ts writes them). */
export interface LegacyResults {
  ratios: Record<string, number>;
  backup: { medianMs: number; pbStyleMedianMs: number };
  nextBackup: { medianMs: number; changesPercent: number; rowsAdded: number };
  archive: { bytes: number; pbStyleBytes: number; unzipTestOk: boolean };
  restore: { medianMs: number; withLoginMedianMs: number; allExtractedMedianMs: number; pbStyleMedianMs: number };
  peakRss: { smallMb: number; bigMb: number; nextMb: number };
  writerStall: { maxGapMs: number };
  health: { idleP50Ms: number; idleP99Ms: number; busyP50Ms: number; busyP99Ms: number };
  machine: { nproc: number; cpu: string; bun: string; deflater: string; commit: string; date?: string };
  options: { dbMb: number; storageMb: number; bigDbMb: number; runs: number; probeSync: string };
  stolenCpuPercent: { firstBackups: number[]; pbStyle: number[]; restores: number[]; pbStyleExtracts: number[] };
}

const f = (n: number, digits = 0) => n.toFixed(digits);
const met = (good: boolean) => (good ? "yes" : "NO");

/** One row per measure: measure, value, detail, target, met. */
export function resultRows(res: LegacyResults): string[][] {
  const r = res.ratios;
  return [
    ["first backup time / pb-style", `${f(r.backupTime!, 2)}×`, `${f(res.backup.medianMs)} ms vs ${f(res.backup.pbStyleMedianMs)} ms; nothing to reuse`, "≤ 0.40", met(r.backupTime! <= 0.4)],
    ["next backup time / pb-style", `${f(r.nextBackupTime!, 2)}×`, `${f(res.nextBackup.medianMs)} ms vs ${f(res.backup.pbStyleMedianMs)} ms; after ${res.nextBackup.rowsAdded} new rows (${res.nextBackup.changesPercent}%)`, "≤ 0.40", met(r.nextBackupTime! <= 0.4)],
    ["archive size / pb-style", `${f(r.archiveSize!, 3)}×`, `${f(res.archive.bytes / MB, 1)} MB vs ${f(res.archive.pbStyleBytes / MB, 1)} MB`, "≤ 1.05", met(r.archiveSize! <= 1.05)],
    ["restore time / pb-style extract", `${f(r.restoreTime!, 2)}×`, `${f(res.restore.medianMs)} ms vs ${f(res.restore.pbStyleMedianMs)} ms; unchanged uploads copied; with a login ${f(res.restore.withLoginMedianMs)} ms`, "≤ 0.60", met(r.restoreTime! <= 0.6)],
    ["restore, uploads deleted / pb-style", `${f(r.restoreAllExtractedTime!, 2)}×`, `${f(res.restore.allExtractedMedianMs)} ms; everything extracted`, "≤ 0.60", met(r.restoreAllExtractedTime! <= 0.6)],
    [
      "peak RSS big / small",
      `${f(r.rssBigOverSmall!, 2)}×`,
      `${f(res.peakRss.bigMb)} MB vs ${f(res.peakRss.smallMb)} MB; next backups ${f(res.peakRss.nextMb)} MB`,
      "≤ 1.15, < 256 MB",
      met(r.rssBigOverSmall! <= 1.15 && Math.max(res.peakRss.bigMb, res.peakRss.smallMb, res.peakRss.nextMb) < 256),
    ],
    ["longest writer stall", `${f(res.writerStall.maxGapMs, 1)} ms`, "", "< 50 ms", met(res.writerStall.maxGapMs < 50)],
    ["/api/health p99 busy (idle)", `${f(res.health.busyP99Ms, 1)} ms`, `p50 ${f(res.health.busyP50Ms, 1)} ms; idle p50 ${f(res.health.idleP50Ms, 1)} / p99 ${f(res.health.idleP99Ms, 1)} ms`, "< 25 ms", met(res.health.busyP99Ms < 25)],
    ["unzip -t accepts the archive", met(res.archive.unzipTestOk), "", "yes", met(res.archive.unzipTestOk)],
  ];
}

/** The rows as a Markdown table, padded so it also reads as plain text in a terminal. */
export function resultTable(res: LegacyResults): string {
  const header = ["measure", "value", "detail", "target", "met"];
  const rows = resultRows(res);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** What was measured, on what, in one paragraph under the table. */
export function resultConditions(res: LegacyResults): string {
  const o = res.options;
  const m = res.machine;
  let text =
    `${o.dbMb} MB db + ${o.storageMb} MB storage (big: ${o.bigDbMb} MB db), medians of ${o.runs} runs; ` +
    `restore timed from POST …/restore to the restored database serving (the old token refused), BACKSTREAM_RESTORE_DELAY_MS=0 (PocketBase's 1 s delay not counted); ` +
    `writer probe: one insert every 5 ms, synchronous=${o.probeSync}; dirty pages synced to disk before every timed run. ` +
    `${m.nproc} × ${m.cpu}, Bun ${m.bun}, deflater ${m.deflater}.`;
  const { firstBackups, pbStyle, restores, pbStyleExtracts } = res.stolenCpuPercent;
  if (firstBackups.length && pbStyle.length) {
    const restoreNote = restores.length && pbStyleExtracts.length ? `, ${f(median(restores))}% during restores, ${f(median(pbStyleExtracts))}% during its extractions` : "";
    text +=
      `\nCPU time stolen by the hypervisor (median share of ${m.nproc} CPUs' time): ${f(median(firstBackups))}% during first backups, ` +
      `${f(median(pbStyle))}% during pb-style-zip's${restoreNote}; backstream, which keeps both cores busy, loses more of its speed to it.`;
  }
  return text;
}
