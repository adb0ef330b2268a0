// Tiered retention of scheduled backups, end to end: the real scheduler, service, archive jobs and stores (local,
// and S3 through s3rver), months of scheduled runs on a fake clock. After every run the scheduler prunes; at the
// end exactly the backups the policy names are left, and manual and uploaded backups were never touched.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { BackupService } from "../../src/backups/backup-service.ts";
import { JobLock } from "../../src/backups/job-lock.ts";
import { isoWeekOf, type RetentionPolicy } from "../../src/settings/retention-policy.ts";
import { MemoryScheduleSettings } from "../../src/settings/schedule-settings.ts";
import { BackupScheduler, previewRetention, runTimeOf } from "../../src/backups/scheduler.ts";
import { DatabaseHandle } from "../../src/db/database-handle.ts";
import { JobTracker } from "../../src/jobs/job-tracker.ts";
import { runJobInline } from "../../src/jobs/run-job.ts";
import { createMemoryLogger } from "../../src/logger.ts";
import type { BackupStore, StoreDescriptor } from "../../src/store/backup-store.ts";
import { LocalBackupStore } from "../../src/store/local-backup-store.ts";
import { S3BackupStore } from "../../src/store/s3-backup-store.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { startS3rver, type S3Server } from "../support/s3rver.ts";
import { makeTempDir } from "../support/test-server.ts";

/** An independent statement of the rule: the newest run of each of the last `n` periods that have one. */
function newestOfLastPeriods(runs: Date[], n: number, period: (at: Date) => string): Date[] {
  const newest = new Map<string, Date>();
  for (const at of runs) if (!newest.has(period(at)) || at > newest.get(period(at))!) newest.set(period(at), at);
  return [...newest.values()].sort((a, b) => b.getTime() - a.getTime()).slice(0, n);
}

function expectedRuns(runs: Date[], policy: Required<Omit<RetentionPolicy, "cronMaxKeep">>): Set<number> {
  const newestFirst = [...runs].sort((a, b) => b.getTime() - a.getTime());
  return new Set(
    [
      ...newestFirst.slice(0, policy.keepLast),
      ...newestOfLastPeriods(runs, policy.keepDaily, (at) => at.toISOString().slice(0, 10)),
      ...newestOfLastPeriods(runs, policy.keepWeekly, isoWeekOf),
      ...newestOfLastPeriods(runs, policy.keepMonthly, (at) => at.toISOString().slice(0, 7)),
    ].map((at) => at.getTime()),
  );
}

/** Runs `cron` on a fake clock from `from` to `to`, pruning after each run; returns every run's time. */
async function runSchedule(store: BackupStore, descriptor: StoreDescriptor, dir: string, schedule: { cron: string } & RetentionPolicy, from: Date, to: Date) {
  const db = new DatabaseHandle(join(dir, "data.db"));
  await db.open();
  const log = createMemoryLogger();
  const service = new BackupService({
    dataDir: dir, appName: "Acme", producer: "test", db, lock: new JobLock(), jobs: new JobTracker(), log,
    store: () => ({ store, descriptor }), runJob: runJobInline, restoreDelayMs: 0, afterRestore: async () => {},
  });
  try {
    // A manual backup and an upload, made first (the oldest of all): no rule may ever delete them.
    await service.create("manual.zip");
    const uploaded = await store.read("manual.zip");
    await service.upload("uploaded.zip", uploaded);
    const clock = new FakeClock(from);
    const scheduler = new BackupScheduler({ settings: new MemoryScheduleSettings(schedule), backups: service, appName: "Acme", log, clock });
    const runs: Date[] = [];
    const failed: string[] = [];
    scheduler.onRun((run) => (run.outcome === "created" ? runs.push(runTimeOf(run.key)!) : failed.push(`${run.key}: ${run.outcome}`)));
    await scheduler.start();
    try {
      // One run at a time: each must finish (and prune) before the clock moves to the next.
      while (scheduler.nextRun && scheduler.nextRun <= to) {
        const count = runs.length + failed.length;
        clock.advanceTo(scheduler.nextRun);
        while (runs.length + failed.length === count) await scheduler.idle();
      }
    } finally {
      scheduler.stop();
      await scheduler.idle();
    }
    expect(failed).toEqual([]);
    const dryRun = await previewRetention(service, schedule);
    return { runs, keys: (await store.list()).map((b) => b.key).sort(), dryRun, log };
  } finally {
    await db.close();
  }
}

const POLICY = { cronMaxKeep: 3, keepLast: 2, keepDaily: 5, keepWeekly: 3, keepMonthly: 3 };

function expectPolicyHeld(result: Awaited<ReturnType<typeof runSchedule>>) {
  const expected = expectedRuns(result.runs, POLICY);
  const autos = result.keys.filter((k) => k.startsWith("@auto_pb_backup_"));
  expect(autos.map((k) => runTimeOf(k)!.getTime()).sort()).toEqual([...expected].sort());
  expect(result.keys).toContain("manual.zip");
  expect(result.keys).toContain("uploaded.zip");
  // What is left is a fixed point: a dry run now would delete nothing, and names a reason for each.
  expect(result.dryRun.remove).toEqual([]);
  expect(result.dryRun.keep.every((k) => k.reasons.length > 0)).toBe(true);
}

describe("tiered retention over months of scheduled backups", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir("backstream-retention-");
    await seedDataDir(dir, { rows: 5, files: 1 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test("local store: two backups a day for 100 days leave exactly the backups the policy names", async () => {
    const store = new LocalBackupStore(join(dir, "backups"));
    const result = await runSchedule(store, { kind: "local", dir: join(dir, "backups") }, dir, { cron: "0 6,18 * * *", ...POLICY }, new Date("2026-01-01T00:00:00Z"), new Date("2026-04-10T23:59:00Z"));
    expect(result.runs.length).toBe(200);
    expectPolicyHeld(result);
  }, 120_000);

  describe("S3 store", () => {
    let s3: S3Server;
    beforeAll(async () => {
      s3 = await startS3rver();
    });
    afterAll(() => s3?.stop());

    test("two backups a day for 50 days, in a bucket: the same policy holds", async () => {
      const descriptor = s3.descriptor();
      const result = await runSchedule(new S3BackupStore(descriptor), descriptor, dir, { cron: "0 3,15 * * *", ...POLICY }, new Date("2026-05-20T00:00:00Z"), new Date("2026-07-08T23:00:00Z"));
      expect(result.runs.length).toBe(100);
      expectPolicyHeld(result);
    }, 120_000);
  });
});
