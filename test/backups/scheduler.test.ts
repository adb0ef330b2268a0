import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { rm, utimes } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { BackupService, type JobRunner } from "../../src/backups/backup-service.ts";
import { JobLock } from "../../src/backups/job-lock.ts";
import { MemoryScheduleSettings } from "../../src/settings/schedule-settings.ts";
import { BackupScheduler } from "../../src/backups/scheduler.ts";
import { cronProblem } from "../../src/settings/cron.ts";
import { DatabaseHandle } from "../../src/db/database-handle.ts";
import { JobTracker } from "../../src/jobs/job-tracker.ts";
import { runJobInline } from "../../src/jobs/run-job.ts";
import { createMemoryLogger } from "../../src/logger.ts";
import { LocalBackupStore } from "../../src/store/local-backup-store.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { makeTempDir, waitFor } from "../support/test-server.ts";

let dir: string;
let db: DatabaseHandle;
let store: LocalBackupStore;
let lock: JobLock;
let jobs: JobTracker;
let log: ReturnType<typeof createMemoryLogger>;
let failNext: string | undefined;
let service: BackupService;

beforeEach(async () => {
  dir = await makeTempDir("backstream-sched-");
  await seedDataDir(dir, { rows: 20, files: 2 });
  db = new DatabaseHandle(join(dir, "data.db"));
  await db.open();
  store = new LocalBackupStore(join(dir, "backups"));
  lock = new JobLock();
  jobs = new JobTracker();
  log = createMemoryLogger();
  failNext = undefined;
  const runJob: JobRunner = async (params, context) => {
    if (failNext) {
      const message = failNext;
      failNext = undefined;
      throw new Error(message);
    }
    return runJobInline(params, context);
  };
  service = new BackupService({
    dataDir: dir, appName: "Acme Corp", producer: "test", db, lock, jobs, log,
    store: () => ({ store, descriptor: { kind: "local", dir: join(dir, "backups") } }),
    runJob, restoreDelayMs: 0, afterRestore: async () => {},
  });
});
afterEach(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

const keys = async () => (await store.list()).map((b) => b.key).sort();

function makeScheduler(clock: FakeClock, settings: MemoryScheduleSettings, extra: { alertWebhook?: string } = {}) {
  return new BackupScheduler({ settings, backups: service, appName: "Acme Corp", log, clock, ...extra });
}

describe("scheduled backups", () => {
  test("rejects what croner rejects and accepts 5 fields and macros", () => {
    expect(cronProblem("")).toBeUndefined();
    expect(cronProblem("0 3 * * *")).toBeUndefined();
    expect(cronProblem("@daily")).toBeUndefined();
    expect(cronProblem("*/15 * * * 1-5")).toBeUndefined();
    expect(cronProblem("0 0 3 * * *")).toContain("5 parts");
    expect(cronProblem("not a cron")).toBeString();
  });

  test("runs at the right UTC times, with @auto names, and keeps the newest cronMaxKeep auto backups only", async () => {
    // A manual backup and an "upload" that the pruning must never touch.
    await service.create("manual.zip");
    await service.create("@auto_looks_auto_but_is_not_prefixed.zip", "scheduled");
    const clock = new FakeClock(new Date("2026-03-01T01:59:30Z"));
    const settings = new MemoryScheduleSettings({ cron: "0 */2 * * *", cronMaxKeep: 2 });
    const scheduler = makeScheduler(clock, settings);
    await scheduler.start();
    try {
      expect(scheduler.nextRun?.toISOString()).toBe("2026-03-01T02:00:00.000Z");
      clock.advanceTo(new Date("2026-03-01T01:59:59Z"));
      await scheduler.idle();
      expect(await keys()).not.toContain("@auto_pb_backup_acme_corp_20260301020000.zip");

      const runs: string[] = [];
      scheduler.onRun((run) => runs.push(`${run.outcome} ${run.key}`));
      for (const hour of ["02", "04", "06"]) {
        clock.advanceTo(new Date(`2026-03-01T${hour}:00:00Z`));
        await waitFor(() => runs.length === ["02", "04", "06"].indexOf(hour) + 1, `the ${hour}:00 run`);
        await scheduler.idle();
      }
      expect(runs).toEqual([
        "created @auto_pb_backup_acme_corp_20260301020000.zip",
        "created @auto_pb_backup_acme_corp_20260301040000.zip",
        "created @auto_pb_backup_acme_corp_20260301060000.zip",
      ]);
      expect(scheduler.lastRun?.pruned).toEqual(["@auto_pb_backup_acme_corp_20260301020000.zip"]);
      expect(await keys()).toEqual([
        "@auto_looks_auto_but_is_not_prefixed.zip",
        "@auto_pb_backup_acme_corp_20260301040000.zip",
        "@auto_pb_backup_acme_corp_20260301060000.zip",
        "manual.zip",
      ]);
      expect(jobs.recent.filter((j) => j.kind === "scheduled").length).toBe(4);
      expect(scheduler.nextRun?.toISOString()).toBe("2026-03-01T08:00:00.000Z");

      // By modification time, not by name: an auto backup with an old mtime goes first.
      await utimes(join(dir, "backups", "@auto_pb_backup_acme_corp_20260301060000.zip"), new Date("2001-01-01"), new Date("2001-01-01"));
      clock.advanceTo(new Date("2026-03-01T08:00:00Z"));
      await waitFor(() => runs.length === 4, "the 08:00 run");
      expect(scheduler.lastRun?.pruned).toEqual(["@auto_pb_backup_acme_corp_20260301060000.zip"]);
      expect((await keys()).filter((k) => k.startsWith("@auto_pb_backup_"))).toEqual([
        "@auto_pb_backup_acme_corp_20260301040000.zip",
        "@auto_pb_backup_acme_corp_20260301080000.zip",
      ]);
    } finally {
      scheduler.stop();
      await scheduler.idle();
    }
  });

  test("macros run in UTC, and a settings change re-arms (or stops) the schedule", async () => {
    const clock = new FakeClock(new Date("2026-03-01T10:30:00Z"));
    const settings = new MemoryScheduleSettings({ cron: "", cronMaxKeep: 3 });
    const scheduler = makeScheduler(clock, settings);
    await scheduler.start();
    try {
      expect(scheduler.nextRun).toBeUndefined();
      expect(clock.pending).toBe(0);
      await settings.set({ cron: "@daily" });
      expect(scheduler.nextRun?.toISOString()).toBe("2026-03-02T00:00:00.000Z");
      await settings.set({ cron: "15 10 * * *" });
      expect(scheduler.nextRun?.toISOString()).toBe("2026-03-02T10:15:00.000Z");
      clock.advanceTo(new Date("2026-03-02T10:15:00Z"));
      await waitFor(() => scheduler.lastRun, "the run");
      expect(scheduler.lastRun?.key).toBe("@auto_pb_backup_acme_corp_20260302101500.zip");
      await settings.set({ cron: "" });
      expect(scheduler.nextRun).toBeUndefined();
      expect(clock.pending).toBe(0);
      await settings.set({ cron: "0 0 3 * * *" }); // 6 fields: refused, logged, nothing armed
      expect(clock.pending).toBe(0);
      expect(log.lines.some((l) => l.includes("cron expression is invalid"))).toBe(true);
    } finally {
      scheduler.stop();
      await scheduler.idle();
    }
  });

  test("a run that finds the lock held is skipped and logged, and the next one runs", async () => {
    const clock = new FakeClock(new Date("2026-03-01T00:00:00Z"));
    const scheduler = makeScheduler(clock, new MemoryScheduleSettings({ cron: "* * * * *", cronMaxKeep: 5 }));
    await scheduler.start();
    try {
      const release = lock.acquire({ kind: "restore", key: "manual.zip" });
      clock.advanceTo(new Date("2026-03-01T00:01:00Z"));
      await waitFor(() => scheduler.lastRun, "the skipped run");
      expect(scheduler.lastRun).toEqual({ key: "@auto_pb_backup_acme_corp_20260301000100.zip", at: "2026-03-01T00:01:00.000Z", outcome: "skipped", pruned: [] });
      expect(log.lines.some((l) => l.includes("WARN scheduled backup skipped"))).toBe(true);
      expect(await keys()).toEqual([]);
      release();
      clock.advanceTo(new Date("2026-03-01T00:02:00Z"));
      await waitFor(() => scheduler.lastRun?.outcome === "created", "the next run");
      expect(await keys()).toEqual(["@auto_pb_backup_acme_corp_20260301000200.zip"]);
    } finally {
      scheduler.stop();
      await scheduler.idle();
    }
  });

  test("a failed run is logged with its cause, kept as the last job, POSTed to the webhook, and retention still runs", async () => {
    const received: { body: unknown; contentType: string | undefined }[] = [];
    const hook: Server = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk) => (text += chunk));
      req.on("end", () => {
        received.push({ body: JSON.parse(text), contentType: req.headers["content-type"] });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
    const port = (hook.address() as { port: number }).port;
    const clock = new FakeClock(new Date("2026-03-01T00:00:00Z"));
    const scheduler = makeScheduler(clock, new MemoryScheduleSettings({ cron: "@hourly", cronMaxKeep: 1 }), {
      alertWebhook: `http://127.0.0.1:${port}/alerts`,
    });
    await scheduler.start();
    try {
      clock.advanceTo(new Date("2026-03-01T01:00:00Z"));
      await waitFor(() => scheduler.lastRun, "the first run");
      clock.advanceTo(new Date("2026-03-01T02:00:00Z"));
      await waitFor(() => scheduler.lastRun?.at === "2026-03-01T02:00:00.000Z", "the second run");
      expect(await keys()).toEqual(["@auto_pb_backup_acme_corp_20260301020000.zip"]);

      failNext = "disk full while writing /var/lib/secret/place";
      clock.advanceTo(new Date("2026-03-01T03:00:00Z"));
      await waitFor(() => scheduler.lastRun?.outcome === "failed", "the failed run");
      expect(scheduler.lastRun?.error).toBe("disk full while writing …/place");
      expect(jobs.last).toMatchObject({ kind: "scheduled", key: "@auto_pb_backup_acme_corp_20260301030000.zip", phase: "failed", error: "disk full while writing …/place" });
      expect(log.lines.some((l) => l.includes("ERROR scheduled backup failed") && l.includes("disk full"))).toBe(true);
      await waitFor(() => received.length === 1, "the webhook POST");
      expect(received[0]).toEqual({
        contentType: "application/json",
        body: { event: "scheduled_backup_failed", app: "Acme Corp", key: "@auto_pb_backup_acme_corp_20260301030000.zip", at: "2026-03-01T03:00:00.000Z", error: "disk full while writing …/place" },
      });
      // nothing partial stored, and retention ran anyway (one auto backup kept)
      expect(await keys()).toEqual(["@auto_pb_backup_acme_corp_20260301020000.zip"]);
    } finally {
      scheduler.stop();
      await scheduler.idle();
      hook.close();
    }
  });
});

describe("the server runs the schedule from its settings", () => {
  test("with a fake clock: the run goes through the worker and shows in /api/backups and /api/jobs", async () => {
    const { loadConfig } = await import("../../src/config.ts");
    const { startServer } = await import("../../src/server.ts");
    const { SettingsStore } = await import("../../src/settings/settings-store.ts");
    const serverDir = await makeTempDir("backstream-sched-server-");
    try {
      await seedDataDir(serverDir, { rows: 10, files: 1 });
      const seedDb = new DatabaseHandle(join(serverDir, "data.db"));
      await seedDb.open();
      await new SettingsStore(seedDb).update({ cron: "30 4 * * *", cronMaxKeep: 1 });
      await seedDb.close();

      const clock = new FakeClock(new Date("2026-05-01T04:00:00Z"));
      const config = loadConfig({ http: "127.0.0.1:0", dir: serverDir }, { PB_APP_NAME: "Shop", PB_SUPERUSER_EMAIL: "a@b.co", PB_SUPERUSER_PASSWORD: "password123" });
      const server = await startServer(config, { log: createMemoryLogger(), clock });
      try {
        clock.advanceTo(new Date("2026-05-01T04:30:00Z"));
        await waitFor(() => server.ctx.jobs.last?.finishedAt, "the scheduled job");
        expect(server.ctx.jobs.last).toMatchObject({ kind: "scheduled", key: "@auto_pb_backup_shop_20260501043000.zip", phase: "done", error: null });
        expect((await server.ctx.backups.list()).map((b) => b.key)).toEqual(["@auto_pb_backup_shop_20260501043000.zip"]);
      } finally {
        await server.stop();
      }
    } finally {
      await rm(serverDir, { recursive: true, force: true });
    }
  });
});
