import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LocalBackupStore } from "../../src/store/local-backup-store.ts";
import { storeBytes } from "../support/archives.ts";
import { readPosts, seedDataDir } from "../support/data-dir.ts";
import { openEventStream, type ReceivedEvent } from "../support/sse.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";

let server: TestServer;

beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir, { rows: 2000, files: 6 });
  // Big enough that the worker reports progress several times on the way.
  const noise = new Uint8Array(48 * 1024 * 1024);
  for (let i = 0; i < noise.length; i += 65536) noise.set(crypto.getRandomValues(new Uint8Array(65536)), i);
  await writeFile(join(dir, "storage", "video.mp4"), noise);
  server = await startTestServer({ dir });
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
});

const JOB_FIELDS = ["bytesDone", "bytesTotal", "entriesDone", "entriesTotal", "error", "finishedAt", "id", "key", "kind", "phase", "startedAt"];

/** Events of one job, in order; the numbers never go backwards and end at the totals. */
function expectGrowingToTotals(events: ReceivedEvent[], id: string) {
  const mine = events.filter((e) => e.data.id === id);
  const final = mine.at(-1)!;
  expect(final.event).toBe("done");
  expect(mine.filter((e) => e.event === "done")).toHaveLength(1);
  for (let i = 1; i < mine.length; i++) {
    for (const field of ["bytesDone", "bytesTotal", "entriesDone", "entriesTotal"]) {
      expect(mine[i]!.data[field]).toBeGreaterThanOrEqual(mine[i - 1]!.data[field]);
    }
  }
  for (const e of mine) {
    expect(Object.keys(e.data).sort()).toEqual(JOB_FIELDS);
    expect(e.data.bytesDone).toBeLessThanOrEqual(final.data.bytesTotal);
  }
  return { mine, final: final.data, progress: mine.filter((e) => e.event === "progress") };
}

/** bytesTotal is known up front: once past "starting", every event already carries the final total. */
function expectTotalsUpFront(progress: ReceivedEvent[], final: { bytesTotal: number; entriesTotal: number }) {
  const working = progress.filter((e) => e.data.phase !== "starting" && e.data.bytesDone > 0);
  for (const e of working) {
    expect(e.data.bytesTotal).toBe(final.bytesTotal);
    expect(e.data.entriesTotal).toBe(final.entriesTotal);
  }
}

describe("/api/jobs and /api/jobs/events", () => {
  test("superusers only", async () => {
    expect((await call(`${server.url}/api/jobs`)).status).toBe(401);
    expect((await call(`${server.url}/api/jobs/events`)).status).toBe(401);
    expect(await call(`${server.url}/api/jobs`, { token: server.pb.authStore.token })).toMatchObject({ status: 200, body: { active: null, recent: [] } });
  });

  test("a real backup: active while it runs, progress only grows, throttled, ends at the totals", async () => {
    const token = server.pb.authStore.token;
    const stream = await openEventStream(`${server.url}/api/jobs/events`, token);
    try {
      expect(stream.response.headers.get("content-type")).toBe("text/event-stream");
      await waitFor(() => stream.events.length >= 1, "the snapshot event");
      expect(stream.events[0]).toMatchObject({ event: "snapshot", data: { active: null, recent: [] } });

      // Unthrottled, as the tracker sees the worker's messages: the real numbers grow on the way.
      const raw: { phase: string; bytesDone: number; bytesTotal: number }[] = [];
      const unsubscribe = server.ctx.jobs.subscribe((job) => raw.push(job));
      const created = server.pb.backups.create("big.zip");
      const seen = await waitFor(async () => {
        const { body } = await call(`${server.url}/api/jobs`, { token });
        return (body as { active: { bytesDone: number } | null }).active;
      }, "an active job");
      expect(seen).toMatchObject({ kind: "create", key: "big.zip", finishedAt: null, error: null });
      await created;
      unsubscribe();
      const archivingRaw = raw.filter((j) => j.phase === "archiving");
      expect(archivingRaw[0]!.bytesDone).toBe(0);
      expect(new Set(archivingRaw.map((j) => j.bytesDone)).size).toBeGreaterThanOrEqual(2);
      // the database's size is an estimate until its snapshot opens; from the first byte on the total is exact
      const total = archivingRaw.at(-1)!.bytesTotal;
      expect(archivingRaw.filter((j) => j.bytesDone > 0).every((j) => j.bytesTotal === total)).toBe(true);
      await waitFor(() => stream.events.some((e) => e.event === "done" && e.data.key === "big.zip"), "the final event");

      const id = stream.events.find((e) => e.data.key === "big.zip")!.data.id;
      const { final, progress } = expectGrowingToTotals(stream.events, id);
      expect(final).toMatchObject({ kind: "create", key: "big.zip", phase: "done", error: null });
      expect(final.bytesTotal).toBeGreaterThan(48 * 1024 * 1024);
      expect(final.bytesDone).toBe(final.bytesTotal);
      expect(final.entriesDone).toBe(final.entriesTotal);
      expect(final.entriesTotal).toBe(9); // data.db, 6 files, photo.jpg, video.mp4
      // bytesTotal was known up front: the first archiving event already has it
      expectTotalsUpFront(progress, final);
      // a few updates a second at most
      const span = Math.max(1, (progress.at(-1)!.at - progress[0]!.at) / 1000);
      expect(progress.length).toBeLessThanOrEqual(Math.ceil(span * 4) + 2);

      const { body } = await call(`${server.url}/api/jobs`, { token });
      expect(body).toEqual({ active: null, recent: [final] });
    } finally {
      await stream.close();
    }
  });

  test("a real restore, and a failed one: the final event carries the outcome", async () => {
    const token = server.pb.authStore.token;
    await storeBytes(new LocalBackupStore(join(server.dir, "backups")), "junk.zip", new TextEncoder().encode("PK\x03\x04 not really a zip"));
    const stream = await openEventStream(`${server.url}/api/jobs/events`, token);
    try {
      await server.pb.backups.restore("junk.zip");
      await waitFor(() => stream.events.some((e) => e.event === "done" && e.data.key === "junk.zip"), "the failed restore");
      const failed = stream.events.find((e) => e.event === "done" && e.data.key === "junk.zip")!.data;
      expect(failed).toMatchObject({ kind: "restore", phase: "failed" });
      expect(failed.error).toBeString();
      expect(failed.error).not.toContain(server.dir);
      expect(failed.error).not.toContain("    at ");

      const postsBefore = await readPosts(join(server.dir, "data.db"));
      await server.pb.backups.restore("big.zip");
      await waitFor(() => stream.events.some((e) => e.event === "done" && e.data.key === "big.zip" && e.data.kind === "restore"), "the restore");
      const id = stream.events.find((e) => e.data.key === "big.zip" && e.data.kind === "restore")!.data.id;
      const { final, progress } = expectGrowingToTotals(stream.events, id);
      expect(final).toMatchObject({ kind: "restore", key: "big.zip", phase: "done", error: null, entriesTotal: 9 });
      expect(final.bytesTotal).toBeGreaterThan(48 * 1024 * 1024);
      expectTotalsUpFront(progress, final);
      expect(await readPosts(join(server.dir, "data.db"))).toEqual(postsBefore);
    } finally {
      await stream.close();
    }
    // the restore rotated the token secret: log in again and read the outcomes
    await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
    const { body } = await call(`${server.url}/api/jobs`, { token: server.pb.authStore.token });
    expect((body as { recent: { kind: string; key: string; phase: string }[] }).recent.map((j) => `${j.kind} ${j.key} ${j.phase}`)).toEqual([
      "restore big.zip done",
      "restore junk.zip failed",
      "create big.zip done",
    ]);
  });

  test("an upload reports its phases in order: receiving, checking, then storing while it is published", async () => {
    const token = server.pb.authStore.token;
    const archive = await Bun.file(join(server.dir, "backups", "big.zip")).arrayBuffer();
    const phases: string[] = [];
    const unsubscribe = server.ctx.jobs.subscribe((job) => {
      if (job.kind === "upload" && phases.at(-1) !== job.phase) phases.push(job.phase);
    });
    try {
      const form = new FormData();
      form.append("file", new File([archive], "uploaded.zip", { type: "application/zip" }));
      expect((await call(`${server.url}/api/backups/upload`, { method: "POST", token, body: form })).status).toBe(204);
    } finally {
      unsubscribe();
    }
    expect(phases.filter((p) => p !== "starting")).toEqual(["receiving", "checking", "storing", "done"]);
  });
});
