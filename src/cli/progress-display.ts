import type { JobRecord } from "../jobs/job-tracker.ts";

/** Where progress goes: a terminal gets a live bar, anything else one line per phase. */
export interface ProgressOutput {
  isTTY: boolean;
  write(text: string): void;
}

const BAR_WIDTH = 24;
const REDRAW_MS = 100;

/**
 * Shows a job's progress: on a terminal a bar with bytes, rate and ETA redrawn in place (at most ten times
 * a second); in a pipe or a log one line per phase, so cron mails stay short.
 */
export function createProgressDisplay(out: ProgressOutput, now: () => number = Date.now) {
  let phase = "";
  let lastDraw = 0;
  let drawn = false;
  let startedAt: number | undefined;
  return {
    update(job: JobRecord): void {
      startedAt ??= now();
      if (!out.isTTY) {
        if (job.phase !== phase && !job.finishedAt) out.write(`${job.kind} ${job.key}: ${job.phase} (${formatBytes(job.bytesTotal)}, ${job.entriesTotal} entries)\n`);
        phase = job.phase;
        return;
      }
      const t = now();
      if (!job.finishedAt && job.phase === phase && t - lastDraw < REDRAW_MS) return;
      phase = job.phase;
      lastDraw = t;
      out.write(`\r\x1b[2K${progressLine(job, (t - startedAt) / 1000)}`);
      drawn = true;
    },
    /** Ends the bar's line so that what follows starts on its own. */
    end(): void {
      if (out.isTTY && drawn) out.write("\n");
      drawn = false;
    },
  };
}

/** `[#####-----]  45%  22.9 MB / 50.9 MB  20.1 MB/s  ETA 2s  archiving` */
export function progressLine(job: Pick<JobRecord, "phase" | "bytesDone" | "bytesTotal">, elapsedSeconds: number): string {
  const fraction = job.bytesTotal > 0 ? Math.min(1, job.bytesDone / job.bytesTotal) : 0;
  const filled = Math.round(fraction * BAR_WIDTH);
  const rate = elapsedSeconds > 0 ? job.bytesDone / elapsedSeconds : 0;
  const eta = rate > 0 && job.bytesTotal > job.bytesDone ? `ETA ${formatDuration((job.bytesTotal - job.bytesDone) / rate)}` : "";
  return [
    `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`,
    `${String(Math.floor(fraction * 100)).padStart(3)}%`,
    `${formatBytes(job.bytesDone)} / ${formatBytes(job.bytesTotal)}`,
    `${formatBytes(rate)}/s`,
    eta,
    job.phase,
  ].filter(Boolean).join("  ");
}

export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
