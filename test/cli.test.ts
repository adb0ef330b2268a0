import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LOCK_FILE } from "../src/backups/data-dir-lock.ts";
import { createProgressDisplay, progressLine } from "../src/cli/progress-display.ts";
import { DatabaseHandle } from "../src/db/database-handle.ts";
import type { JobRecord } from "../src/jobs/job-tracker.ts";
import { SettingsStore } from "../src/settings/settings-store.ts";
import { S3BackupStore } from "../src/store/s3-backup-store.ts";
import { hashTree, readPosts, seedDataDir } from "./support/data-dir.ts";
import { startS3rver, type S3Server } from "./support/s3rver.ts";
import { makeTempDir, startTestServer } from "./support/test-server.ts";

const CLI = join(import.meta.dir, "..", "src", "cli.ts");
let dir: string;

/** Runs the real CLI in its own process on `dataDir`, its output piped (so: one line per phase, no bar). */
async function cliIn(dataDir: string, env: Record<string, string>, ...args: string[]) {
  const proc = Bun.spawn([process.execPath, CLI, ...args, `--dir=${dataDir}`], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PB_APP_NAME: "Acme", ...env },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const cli = (...args: string[]) => cliIn(dir, {}, ...args);

beforeAll(async () => {
  dir = await makeTempDir("backstream-cli-");
  await seedDataDir(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bun src/cli.ts backup ...", () => {
  test("create (generated and named), list, one line per phase in a pipe", async () => {
    const generated = await cli("backup", "create");
    expect(generated.code).toBe(0);
    expect(generated.stdout).toMatch(/^pb_backup_acme_\d{14}\.zip\n$/);
    expect(generated.stderr).toContain("create pb_backup_acme_");
    expect(generated.stderr).toContain(": archiving (");
    expect(generated.stderr).not.toContain("\r");

    const named = await cli("backup", "create", "mine.zip");
    expect(named).toMatchObject({ code: 0, stdout: "mine.zip\n" });
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);

    const again = await cli("backup", "create", "mine.zip");
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("The backup file name is invalid or already exists.");
    const bad = await cli("backup", "create", "Bad Name");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Must be in a valid format.");

    const list = await cli("backup", "list");
    expect(list.code).toBe(0);
    const keys = list.stdout.trim().split("\n").map((line) => line.split("\t")[0]).sort();
    expect(keys).toEqual([generated.stdout.trim(), "mine.zip"].sort());
    const [, size, modified] = list.stdout.split("\n")[0]!.split("\t");
    expect(Number(size)).toBeGreaterThan(1000);
    expect(new Date(modified!).getTime()).toBeGreaterThan(0);
  });

  test("verify: ok, a corrupt archive (exit 1, problems named), a missing key", async () => {
    const ok = await cli("backup", "verify", "mine.zip", "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, problems: [] });
    const human = await cli("backup", "verify", "mine.zip");
    expect(human.stdout).toStartWith("ok: ");

    const bytes = new Uint8Array(await readFile(join(dir, "backups", "mine.zip")));
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(join(dir, "backups", "mine.zip"), bytes); // bit rot behind the store's back
    const broken = await cli("backup", "verify", "mine.zip");
    expect(broken.code).toBe(1);
    expect(broken.stdout).toStartWith("FAILED: ");
    expect(broken.stdout).toContain("  - The archive's SHA-256 does not match the one stored with it");

    expect(await cli("backup", "verify", "nope.zip")).toMatchObject({ code: 1, stderr: expect.stringContaining("No backup with that key.") });
    expect((await cli("backup", "verify")).code).toBe(2);
    expect((await cli("backup", "frobnicate")).code).toBe(2);
  });

  test("restore: the data directory comes back as it was backed up", async () => {
    const skip = (rel: string) => rel.startsWith("backups") || rel.startsWith(".pb") || rel.includes(".db") || rel === LOCK_FILE;
    const posts = await readPosts(join(dir, "data.db"));
    const files = await hashTree(dir, skip);
    expect((await cli("backup", "create", "before.zip")).code).toBe(0);
    const db = createClient({ url: `file:${join(dir, "data.db")}` });
    await db.execute("DELETE FROM posts WHERE id > 10");
    db.close();
    await writeFile(join(dir, "storage", "photo.jpg"), "changed");
    await writeFile(join(dir, "storage", "new.txt"), "new");

    const restored = await cli("backup", "restore", "before.zip");
    expect(restored).toMatchObject({ code: 0, stdout: "restored before.zip\n" });
    expect(restored.stderr).toContain("restore before.zip: extracting (");
    expect(await readPosts(join(dir, "data.db"))).toEqual(posts);
    expect(await hashTree(dir, skip)).toEqual(files);

    const missing = await cli("backup", "restore", "nope.zip");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("Missing or invalid backup file.");
  });

  test("--password: create encrypts, verify and restore need the key and name it when it is missing; never printed", async () => {
    const key = "a cli key of twenty chars";
    expect((await cli("backup", "create", "secret.zip", `--password=${key}`)).code).toBe(0);
    const listing = Bun.spawnSync(["unzip", "-Z", "-v", join(dir, "backups", "secret.zip")]).stdout.toString();
    expect(listing).toMatch(/file security status:\s+encrypted/);
    const withKey = await cli("backup", "verify", "secret.zip", `--password=${key}`);
    expect(withKey.code).toBe(0);
    const without = await cli("backup", "verify", "secret.zip");
    expect(without.code).toBe(1);
    expect(without.stderr).toContain("The backup is encrypted and no key is configured to open it.");
    const wrong = await cli("backup", "restore", "secret.zip", "--password=another key of 16+ chars");
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("The backup is encrypted and the configured key does not open it.");
    // The environment's key works the same way, and an older key listed opens it after a change of key.
    const rotated = await cliIn(dir, { BACKSTREAM_BACKUP_PASSWORD: "the new key, long enough", BACKSTREAM_BACKUP_OLD_PASSWORDS: key }, "backup", "restore", "secret.zip");
    expect(rotated).toMatchObject({ code: 0, stdout: "restored secret.zip\n" });
    const short = await cli("backup", "create", "short.zip", "--password=short");
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain("at least 16 characters");
    for (const out of [withKey, without, wrong, rotated, short]) expect(out.stdout + out.stderr).not.toContain(key);
  });

  test("the lock: busy against a running server (even idle) and another live command; a stale lock is recovered", async () => {
    const server = await startTestServer({ dir });
    try {
      for (const args of [["create"], ["restore", "before.zip"], ["verify", "before.zip"]]) {
        const busy = await cli("backup", ...args);
        expect(busy.code).toBe(3);
        expect(busy.stderr).toContain("A backstream server (pid ");
        expect(busy.stderr).toContain("use its API (POST /api/backups");
      }
      expect((await cli("backup", "list")).code).toBe(0); // read-only, allowed beside a server
    } finally {
      await server.stop();
    }
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);

    // a live process holding it as a CLI command: the CLI is busy and the server refuses to start
    const holder = Bun.spawn([process.execPath, "-e", "setInterval(() => {}, 1000)"]);
    try {
      await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: holder.pid, holder: "backup restore", startedAt: new Date().toISOString(), token: "t" }));
      const busy = await cli("backup", "create");
      expect(busy.code).toBe(3);
      expect(busy.stderr).toContain(`Another backstream command (backup restore, pid ${holder.pid})`);
      await expect(startTestServer({ dir })).rejects.toThrow("Another backstream command");
    } finally {
      holder.kill();
      await holder.exited;
    }
    // now its process is gone: the lock is stale, recovered, and released afterwards
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    const created = await cli("backup", "create", "after-crash.zip");
    expect(created.code).toBe(0);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  test("the terminal progress bar shows bytes, rate and ETA", () => {
    expect(progressLine({ phase: "archiving", bytesDone: 25_000_000, bytesTotal: 100_000_000 }, 2)).toBe(
      "[######------------------]   25%  25.0 MB / 100.0 MB  12.5 MB/s  ETA 6s  archiving",
    );
  });

  test("on a terminal the bar is redrawn in place (throttled); in a pipe one line per phase", () => {
    const job = (phase: string, bytesDone: number, finishedAt: string | null = null): JobRecord => ({
      id: "1", kind: "create", key: "k.zip", phase, bytesDone, bytesTotal: 1000, entriesDone: 0, entriesTotal: 2,
      startedAt: "", finishedAt, error: null,
    });
    const feed = (isTTY: boolean) => {
      let out = "";
      let t = 0;
      const display = createProgressDisplay({ isTTY, write: (text) => void (out += text) }, () => t);
      for (const [phase, bytes, at] of [["archiving", 0, 0], ["archiving", 100, 10], ["archiving", 500, 200], ["storing", 1000, 210]] as const) {
        t = at;
        display.update(job(phase, bytes));
      }
      t = 300;
      display.update(job("done", 1000, "now"));
      display.end();
      return out;
    };
    const tty = feed(true);
    expect(tty.split("\r\x1b[2K").filter(Boolean).map((line) => line.trim().split(/\s+/).at(-1))).toEqual(["archiving", "archiving", "storing", "done"]);
    expect(tty).toContain("  50%  500 B / 1.0 kB  2.5 kB/s  ETA 1s  archiving");
    expect(tty.endsWith("\n")).toBe(true);
    expect(feed(false)).toBe("create k.zip: archiving (1.0 kB, 2 entries)\ncreate k.zip: storing (1.0 kB, 2 entries)\n");
  });
});

describe("bun src/cli.ts backup ... with S3 on", () => {
  let s3: S3Server;
  let s3Dir: string;
  let recoveryDir: string;
  beforeAll(async () => {
    s3 = await startS3rver("cli-backups");
    s3Dir = await makeTempDir("backstream-cli-s3-");
    recoveryDir = await makeTempDir("backstream-cli-empty-");
    await seedDataDir(s3Dir, { rows: 300, files: 3 });
  });
  afterAll(async () => {
    await s3.stop();
    await rm(s3Dir, { recursive: true, force: true });
    await rm(recoveryDir, { recursive: true, force: true });
  });
  const bucket = () => new S3BackupStore(s3.descriptor());
  const skip = (rel: string) => rel.startsWith("backups") || rel.startsWith(".pb") || rel.includes(".db") || rel === LOCK_FILE;

  test("the S3 settings saved in data.db send create, list, verify and restore to the bucket, as the server would", async () => {
    const db = new DatabaseHandle(join(s3Dir, "data.db"));
    await db.open();
    await new SettingsStore(db).update({
      s3: { enabled: true, endpoint: s3.endpoint, bucket: s3.bucket, region: "us-east-1", accessKey: "S3RVER", secret: "S3RVER", forcePathStyle: true },
    });
    await db.close();
    const posts = await readPosts(join(s3Dir, "data.db"));
    const files = await hashTree(s3Dir, skip);

    const created = await cliIn(s3Dir, {}, "backup", "create", "offsite.zip");
    expect(created).toMatchObject({ code: 0, stdout: "offsite.zip\n" });
    expect((await bucket().list()).map((item) => item.key)).toEqual(["offsite.zip"]);
    expect(existsSync(join(s3Dir, "backups", "offsite.zip"))).toBe(false);

    const listed = await cliIn(s3Dir, {}, "backup", "list");
    expect(listed.stdout.split("\t")[0]).toBe("offsite.zip");
    const verified = await cliIn(s3Dir, {}, "backup", "verify", "offsite.zip", "--json");
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, problems: [] });

    const client = createClient({ url: `file:${join(s3Dir, "data.db")}` });
    await client.execute("DELETE FROM posts");
    client.close();
    await writeFile(join(s3Dir, "storage", "stray.txt"), "not in the backup");
    expect(await cliIn(s3Dir, {}, "backup", "restore", "offsite.zip")).toMatchObject({ code: 0, stdout: "restored offsite.zip\n" });
    expect(await readPosts(join(s3Dir, "data.db"))).toEqual(posts);
    expect(await hashTree(s3Dir, skip)).toEqual(files);
  });

  test("into an empty directory, PB_BACKUPS_S3_* alone find the bucket (disaster recovery), and nothing is written before the restore", async () => {
    const env = {
      PB_BACKUPS_S3_ENDPOINT: s3.endpoint, PB_BACKUPS_S3_BUCKET: s3.bucket, PB_BACKUPS_S3_REGION: "us-east-1",
      PB_BACKUPS_S3_ACCESS_KEY: "S3RVER", PB_BACKUPS_S3_SECRET: "S3RVER", PB_BACKUPS_S3_FORCE_PATH_STYLE: "true",
    };
    const listed = await cliIn(recoveryDir, env, "backup", "list");
    expect(listed.code).toBe(0);
    expect(listed.stdout.split("\t")[0]).toBe("offsite.zip");
    expect(await readdir(recoveryDir)).toEqual([]); // reading the settings created no data.db
    // without the environment the same directory has only its (empty) local store
    expect(await cliIn(recoveryDir, {}, "backup", "list")).toMatchObject({ code: 0, stdout: "" });

    const restored = await cliIn(recoveryDir, env, "backup", "restore", "offsite.zip");
    expect(restored).toMatchObject({ code: 0, stdout: "restored offsite.zip\n" });
    expect(`${restored.stdout}${restored.stderr}`).not.toContain("S3RVER");
    expect(await readPosts(join(recoveryDir, "data.db"))).toEqual(await readPosts(join(s3Dir, "data.db")));
    expect(await hashTree(recoveryDir, skip)).toEqual(await hashTree(s3Dir, skip));
  });
});
