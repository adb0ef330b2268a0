import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createClient } from "@libsql/client";
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import PocketBase from "pocketbase";
import { seedDataDir } from "../support/data-dir.ts";
import { spawnServer } from "../support/server-process.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";

/** Makes data.db large enough that a backup takes a noticeable while (~80 MB of rows). */
async function growDatabase(dir: string, megabytes: number) {
  const db = createClient({ url: `file:${join(dir, "data.db")}` });
  await db.execute("PRAGMA journal_mode=WAL");
  await db.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, body TEXT)");
  const row = "lorem ipsum dolor sit amet ".repeat(36);
  for (let done = 0; done < megabytes; done += 4) {
    await db.batch(Array.from({ length: 4000 }, (_, i) => ({ sql: "INSERT INTO filler (body) VALUES (?)", args: [`${done}-${i} ${row}`] })), "write");
  }
  await db.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

let server: TestServer;
beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir);
  await growDatabase(dir, 80);
  server = await startTestServer({ dir });
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
});

async function downloadEntry(key: string, name: string): Promise<Uint8Array> {
  const token = await server.pb.files.getToken();
  const bytes = new Uint8Array(await (await fetch(server.pb.backups.getDownloadURL(token, key))).arrayBuffer());
  const zip = new ZipReader(new Uint8ArrayReader(bytes));
  const entry = (await zip.getEntries()).find((e) => e.filename === name) as any;
  const data = await entry.getData(new Uint8ArrayWriter());
  await zip.close();
  return data;
}

describe("create while the app keeps working", () => {
  test("writers never wait on a backup, and the snapshot is a consistent prefix of their writes", async () => {
    const writer = spawn(process.execPath, [resolve(import.meta.dir, "../support/writer-process.ts"), join(server.dir, "data.db"), "2"], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    writer.stdout!.on("data", (d) => (out += d));
    await waitFor(() => out.includes('"ready"'), "the writer to start");
    const countTicks = async () => {
      const db = createClient({ url: `file:${join(server.dir, "data.db")}` });
      try {
        return Number((await db.execute("SELECT count(*) FROM ticks")).rows[0]![0]);
      } finally {
        db.close();
      }
    };
    await waitFor(async () => (await countTicks()) > 20, "some writes before the backup");
    await server.pb.backups.create("while-writing.zip");
    const afterBackup = await countTicks();
    writer.stdin!.end();
    await new Promise((resolve) => writer.once("exit", resolve));
    const stats = JSON.parse(out.trim().split("\n").pop()!);
    console.log(`writer: ${stats.writes} writes, longest write ${stats.longestWriteMs.toFixed(1)} ms during the backup`);
    expect(stats.longestWriteMs).toBeLessThan(50);

    const snapshotPath = join(server.dir, "..", `snap-${Date.now()}.db`);
    await writeFile(snapshotPath, await downloadEntry("while-writing.zip", "data.db"));
    const snap = createClient({ url: `file:${snapshotPath}` });
    try {
      expect((await snap.execute("PRAGMA integrity_check")).rows[0]![0]).toBe("ok");
      const { rows } = await snap.execute("SELECT count(*), min(n), max(n) FROM ticks");
      const [count, min, max] = Array.from(rows[0]!, Number) as [number, number, number];
      // a prefix: 1..max with no gaps, taken before the backup returned
      expect(min).toBe(1);
      expect(count).toBe(max);
      expect(max).toBeGreaterThan(20);
      expect(max).toBeLessThanOrEqual(afterBackup);
    } finally {
      snap.close();
      await rm(snapshotPath, { force: true });
      await rm(`${snapshotPath}-wal`, { force: true });
      await rm(`${snapshotPath}-shm`, { force: true });
    }
    await server.pb.backups.delete("while-writing.zip");
  });

  test("a backup leaves the server's hold on data.db in place: another process cannot take the database for itself", async () => {
    // Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's included, and a
    // backup that read pages through a descriptor of its own did once. The server's connection then no longer
    // held the lock that tells other processes it is there: the app's last connection to close deleted the WAL
    // under it, and every backup after failed with "database disk image is malformed". Leaving WAL mode is what
    // shows it here: SQLite allows it only to a process that can lock the file against every other one.
    const dir = await makeTempDir();
    let serverProcess: Awaited<ReturnType<typeof spawnServer>> | undefined;
    try {
      await seedDataDir(dir);
      await growDatabase(dir, 4);
      serverProcess = await spawnServer(dir);
      const pb = new PocketBase(serverProcess.url);
      await pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
      await pb.backups.create("held.zip");
      const app = Bun.spawnSync([
        process.execPath,
        "-e",
        `import Database from "libsql";
         const db = new Database(${JSON.stringify(join(dir, "data.db"))}, { timeout: 100 });
         let mode;
         try { mode = db.prepare("PRAGMA journal_mode = DELETE").raw().get()[0]; } catch (error) { mode = String(error.message); }
         db.close();
         console.log(mode);`,
      ], { cwd: resolve(import.meta.dir, "../..") });
      expect(app.exitCode).toBe(0);
      expect(app.stdout.toString().trim()).not.toBe("delete");
      await pb.backups.create("after.zip");
      expect(serverProcess.output()).not.toContain("ERROR");
    } finally {
      await serverProcess?.kill("SIGTERM");
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the API answers while a large backup runs in the worker", async () => {
    let done = false;
    const backup = server.pb.backups.create("busy.zip").finally(() => (done = true));
    const latencies: number[] = [];
    let sawBusy = false;
    while (!done) {
      const started = performance.now();
      const res = await fetch(`${server.url}/api/health`, { headers: { Authorization: server.pb.authStore.token } });
      const body = (await res.json()) as { data: { canBackup?: boolean } };
      if (!done) {
        latencies.push(performance.now() - started);
        if (body.data.canBackup === false) sawBusy = true;
      }
    }
    await backup;
    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    console.log(`health during backup: ${latencies.length} answers, p50 ${p(0.5).toFixed(1)} ms, p99 ${p(0.99).toFixed(1)} ms`);
    expect(sawBusy).toBe(true);
    expect(latencies.length).toBeGreaterThan(10);
    expect(p(0.5)).toBeLessThan(50);
    await server.pb.backups.delete("busy.zip");
  });
});

describe("a failed or killed backup leaves nothing", () => {
  test("a backup killed mid-stream is neither listed nor left as a temp file after the next start", async () => {
    const dir = await makeTempDir();
    try {
      await seedDataDir(dir);
      await growDatabase(dir, 40);
      const proc = await spawnServer(dir);
      try {
        const pb = new PocketBase(proc.url);
        await pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
        void pb.backups.create("killed.zip").catch(() => {});
        await waitFor(async () => (await readdir(join(dir, "backups", ".tmp")).catch(() => [])).length > 0, "the backup to start writing");
      } finally {
        await proc.kill("SIGKILL");
      }
      const restarted = await startTestServer({ dir });
      try {
        expect(await restarted.pb.backups.getFullList()).toEqual([]);
        expect(await readdir(join(dir, "backups"))).not.toContain(".tmp");
      } finally {
        await restarted.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a backup that fails answers 'Failed to create backup.', stores nothing and releases the lock", async () => {
    const dir = await makeTempDir();
    const failing = await startTestServer({ dir });
    try {
      // the store's temp folder cannot be created: a file stands where it should be
      await mkdir(join(dir, "backups"), { recursive: true });
      await writeFile(join(dir, "backups", ".tmp"), "not a folder");
      const res = await fetch(`${failing.url}/api/backups`, { method: "POST", headers: { Authorization: failing.pb.authStore.token, "content-type": "application/json" }, body: JSON.stringify({ name: "fails.zip" }) });
      expect(await res.json()).toEqual({ data: {}, message: "Failed to create backup.", status: 400 });
      expect(failing.ctx.jobs.last?.error).toBeTruthy();
      expect(failing.ctx.jobs.last?.error).not.toContain(dir);
      expect(await failing.pb.backups.getFullList()).toEqual([]);
      await rm(join(dir, "backups", ".tmp"));
      await failing.pb.backups.create("works.zip");
      expect((await failing.pb.backups.getFullList()).map((b) => b.key)).toEqual(["works.zip"]);
    } finally {
      await failing.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
