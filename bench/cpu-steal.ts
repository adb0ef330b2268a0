import { readFileSync } from "node:fs";
import { cpus } from "node:os";

/** Linux's clock ticks per second for /proc/stat (USER_HZ), the same on every architecture it runs on. */
const TICKS_PER_SECOND = 100;

/** CPU time the hypervisor gave to other guests, summed over this machine's CPUs, in ms; undefined off Linux. */
function stolenMs(): number | undefined {
  try {
    // "cpu  user nice system idle iowait irq softirq steal ...": the eighth figure is steal.
    const steal = Number(readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/)[8]);
    return Number.isFinite(steal) ? (steal * 1000) / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Measures the share of the machine's CPU time stolen by the hypervisor while something runs: `stop` gives a
 * percentage of (wall time × CPUs), or undefined where it cannot be read.
 *
 * Why the bench reports it: on a shared VM the ratios move with it, and not alike for both sides: backstream keeps
 * both cores busy, so it loses whatever is stolen from either, while pb-style-zip's one busy thread runs on
 * whichever core is left. On a 2-core VM, first backups of the same code took 0.36–0.40× of pb-style-zip's time in
 * the bench on a calmer afternoon, and 0.48–0.58× one after another while 57–62% of the CPU time was stolen.
 */
export function measureSteal(): { stop(): number | undefined } {
  const started = performance.now();
  const before = stolenMs();
  return {
    stop() {
      const after = stolenMs();
      const wallMs = performance.now() - started;
      if (before === undefined || after === undefined || wallMs <= 0) return undefined;
      return (100 * (after - before)) / (wallMs * cpus().length);
    },
  };
}
