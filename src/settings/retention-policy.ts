// Which scheduled backups to keep: PocketBase's `cronMaxKeep` (the newest N), or tiers in the manner of restic's
// `forget --keep-last/--keep-daily/--keep-weekly/--keep-monthly`, so that a week of hourly backups does not push
// out last month's. A pure function of the backups and the policy: the scheduler deletes what it does not keep,
// and the dry-run route shows the same answer without deleting.

/** Tiers beyond PocketBase's `cronMaxKeep`; a tier that is 0 or absent keeps nothing by itself. */
export interface RetentionTiers {
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
}

/** The retention settings a schedule carries. */
export interface RetentionPolicy extends RetentionTiers {
  /** PocketBase's rule: the newest N scheduled backups. Used alone when no tier is set. */
  cronMaxKeep: number;
}

export interface DatedBackup {
  key: string;
  /** When the backup was made. */
  at: Date;
}

/** Why a backup is kept: the rules that keep it (several may). Empty for a backup the policy deletes. */
export type KeepReasons = ("last" | "daily" | "weekly" | "monthly")[];

export interface RetentionDecision {
  keep: { key: string; reasons: KeepReasons }[];
  remove: string[];
}

/** Whether any tier is set, so that the tiers, not `cronMaxKeep` alone, decide. */
export function hasTiers(policy: RetentionPolicy): boolean {
  return [policy.keepLast, policy.keepDaily, policy.keepWeekly, policy.keepMonthly].some((n) => (n ?? 0) > 0);
}

/**
 * Applies `policy` to `backups` (scheduled backups only; the caller never passes manual or uploaded ones).
 *
 * Without tiers: the newest `cronMaxKeep` (at least 1), as PocketBase. With tiers, a backup is kept if any rule
 * keeps it, as restic's `forget`: `keepLast` the newest N (`cronMaxKeep` stands in when it is not set, so the
 * newest backups are never all pruned by a tier-only policy); `keepDaily`/`keepWeekly`/`keepMonthly` the newest
 * backup of each of the last N days, ISO weeks and months that have a backup, in UTC. Counting periods that
 * have a backup (not calendar periods) means a schedule that paused for a week still keeps N daily backups.
 * Equal times are ordered by key, which holds the run time for scheduled backups.
 */
export function applyRetention(backups: DatedBackup[], policy: RetentionPolicy): RetentionDecision {
  const newestFirst = [...backups].sort((a, b) => b.at.getTime() - a.at.getTime() || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  const reasons = new Map<string, KeepReasons>(newestFirst.map((b) => [b.key, []]));
  const tiers = hasTiers(policy);
  const last = tiers ? (policy.keepLast ?? policy.cronMaxKeep) : Math.max(1, policy.cronMaxKeep);
  for (const backup of newestFirst.slice(0, Math.max(0, last))) reasons.get(backup.key)!.push("last");
  if (tiers) {
    keepNewestPerPeriod(newestFirst, policy.keepDaily ?? 0, dayOf, "daily", reasons);
    keepNewestPerPeriod(newestFirst, policy.keepWeekly ?? 0, isoWeekOf, "weekly", reasons);
    keepNewestPerPeriod(newestFirst, policy.keepMonthly ?? 0, monthOf, "monthly", reasons);
  }
  const decision: RetentionDecision = { keep: [], remove: [] };
  for (const backup of newestFirst) {
    const why = reasons.get(backup.key)!;
    if (why.length) decision.keep.push({ key: backup.key, reasons: why });
    else decision.remove.push(backup.key);
  }
  return decision;
}

function keepNewestPerPeriod(newestFirst: DatedBackup[], count: number, periodOf: (at: Date) => string, reason: KeepReasons[number], reasons: Map<string, KeepReasons>) {
  const seen = new Set<string>();
  for (const backup of newestFirst) {
    if (seen.size >= count) return;
    const period = periodOf(backup.at);
    if (seen.has(period)) continue;
    seen.add(period);
    reasons.get(backup.key)!.push(reason);
  }
}

const dayOf = (at: Date) => at.toISOString().slice(0, 10);
const monthOf = (at: Date) => at.toISOString().slice(0, 7);

/** `2026-W49`: ISO 8601 weeks start on Monday, and week 1 holds the year's first Thursday. */
export function isoWeekOf(at: Date): string {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const weekday = day.getUTCDay() || 7; // Monday 1 … Sunday 7
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}
