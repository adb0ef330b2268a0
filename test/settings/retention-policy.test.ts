import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { applyRetention, isoWeekOf, type DatedBackup, type RetentionPolicy } from "../../src/settings/retention-policy.ts";

const HOUR = 3_600_000;
const hourly = (from: string, hours: number): DatedBackup[] =>
  Array.from({ length: hours }, (_, i) => {
    const at = new Date(Date.parse(from) + i * HOUR);
    return { key: `@auto_pb_backup_${at.toISOString()}.zip`, at };
  });
const kept = (backups: DatedBackup[], policy: RetentionPolicy) => applyRetention(backups, policy).keep.map((k) => k.key).sort();

/** An independent statement of the rule: the newest backup of each of the last `n` periods that have one. */
function newestOfLastPeriods(backups: DatedBackup[], n: number, period: (at: Date) => string): string[] {
  const newest = new Map<string, DatedBackup>();
  for (const b of backups) {
    const p = period(b.at);
    const current = newest.get(p);
    if (!current || b.at > current.at) newest.set(p, b);
  }
  return [...newest.values()].sort((a, b) => b.at.getTime() - a.at.getTime()).slice(0, n).map((b) => b.key);
}

describe("isoWeekOf", () => {
  test("ISO 8601 weeks across year ends", () => {
    expect(isoWeekOf(new Date("2021-01-03T23:00:00Z"))).toBe("2020-W53"); // a Sunday, still 2020's last week
    expect(isoWeekOf(new Date("2021-01-04T00:00:00Z"))).toBe("2021-W01");
    expect(isoWeekOf(new Date("2024-12-30T12:00:00Z"))).toBe("2025-W01"); // a Monday, in 2025's first week
    expect(isoWeekOf(new Date("2026-12-06T21:00:00Z"))).toBe("2026-W49");
    expect(isoWeekOf(new Date("2026-12-07T00:00:00Z"))).toBe("2026-W50");
  });
});

describe("applyRetention", () => {
  test("cronMaxKeep alone keeps the newest N, as PocketBase (at least one)", () => {
    const backups = hourly("2026-01-01T00:00:00Z", 10);
    expect(kept(backups, { cronMaxKeep: 3 })).toEqual(backups.slice(7).map((b) => b.key).sort());
    expect(kept(backups, { cronMaxKeep: 0 })).toEqual([backups[9]!.key]);
  });

  test("three months of hourly backups: exactly the newest of the last 7 days, 4 ISO weeks and 3 months, and the last 2", () => {
    const backups = hourly("2026-09-01T00:00:00Z", 24 * 91 + 5);
    const policy = { cronMaxKeep: 3, keepLast: 2, keepDaily: 7, keepWeekly: 4, keepMonthly: 3 };
    const newestFirst = [...backups].reverse();
    const expected = new Set([
      ...newestFirst.slice(0, 2).map((b) => b.key),
      ...newestOfLastPeriods(backups, 7, (at) => at.toISOString().slice(0, 10)),
      ...newestOfLastPeriods(backups, 4, isoWeekOf),
      ...newestOfLastPeriods(backups, 3, (at) => at.toISOString().slice(0, 7)),
    ]);
    const decision = applyRetention(backups, policy);
    expect(decision.keep.map((k) => k.key).sort()).toEqual([...expected].sort());
    expect(decision.keep.length).toBeLessThan(2 + 7 + 4 + 3 + 1);
    expect(decision.remove.length).toBe(backups.length - decision.keep.length);
    // the newest is kept by every rule
    expect(decision.keep[0]).toEqual({ key: newestFirst[0]!.key, reasons: ["last", "daily", "weekly", "monthly"] });
  });

  test("a tier-only policy keeps the newest cronMaxKeep as its keepLast", () => {
    const backups = hourly("2026-03-01T00:00:00Z", 48);
    const decision = applyRetention(backups, { cronMaxKeep: 3, keepMonthly: 1 });
    expect(decision.keep.map((k) => k.key)).toEqual([...backups].reverse().slice(0, 3).map((b) => b.key));
  });

  test("periods are the ones that have backups: a paused schedule still keeps N daily backups", () => {
    const backups = [...hourly("2026-01-01T00:00:00Z", 1), ...hourly("2026-02-01T00:00:00Z", 1), ...hourly("2026-02-20T00:00:00Z", 1)];
    expect(kept(backups, { cronMaxKeep: 1, keepLast: 0, keepDaily: 3 })).toEqual(backups.map((b) => b.key).sort());
  });

  const backupsArb = fc.uniqueArray(fc.integer({ min: 0, max: 400 * 24 }), { minLength: 1, maxLength: 80 }).map((hours) =>
    hours.map((h) => {
      const at = new Date(Date.parse("2025-06-01T00:00:00Z") + h * HOUR);
      return { key: `@auto_${h}.zip`, at };
    }),
  );
  const tier = fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined });
  const policyArb = fc.record({ cronMaxKeep: fc.integer({ min: 0, max: 10 }), keepLast: tier, keepDaily: tier, keepWeekly: tier, keepMonthly: tier });

  test("properties: a partition of the input, the newest always kept, idempotent, and more of any tier never keeps less", () => {
    fc.assert(
      fc.property(backupsArb, policyArb, fc.constantFrom("keepLast", "keepDaily", "keepWeekly", "keepMonthly" as const), (backups, policy, grow) => {
        const decision = applyRetention(backups, policy);
        const keys = decision.keep.map((k) => k.key);
        expect([...keys, ...decision.remove].sort()).toEqual(backups.map((b) => b.key).sort());
        expect(new Set(keys).size).toBe(keys.length);
        const newest = [...backups].sort((a, b) => b.at.getTime() - a.at.getTime())[0]!;
        if (decision.keep.length) expect(keys).toContain(newest.key);
        const again = applyRetention(backups.filter((b) => keys.includes(b.key)), policy);
        expect(again.remove).toEqual([]);
        const more = applyRetention(backups, { ...policy, [grow]: (policy[grow] ?? policy.cronMaxKeep) + 1 });
        for (const key of keys) expect(more.keep.map((k) => k.key)).toContain(key);
      }),
      { seed: 20261206, numRuns: 300 },
    );
  });
});
