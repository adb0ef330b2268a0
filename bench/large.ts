// `npm run bench -- --large`: a 10 GB database beside 2 GB of uploads (`--large-db-mb`, `--large-storage-mb`)
// backed up and restored on the local store and on S3 (s3rver, started here), the local archive uploaded through
// the API to S3 and its copy there hashed: archives over 5 GiB (S3's single-request copy and PUT limits) end to
// end, with each step's time, throughput and the server's peak RSS. Results: bench/results/large.json.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { startS3rver } from "../test/support/s3rver.ts";
import { ensureCached } from "./generate-data.ts";
import { login, sampleRss, startServerProcess, type ServerProcess } from "./server-process.ts";
import { generateDatabase, hex, noise, prng, proseBytes, timestamp, words, writeUpload } from "./shapes/common.ts";
import { backupOnce, dataSetBytes, loggedNumber, log, MB, restoreAndLogin, settle } from "./steps.ts";

export interface LargeOptions {
  cache: string;
  dbMb: number;
  storageMb: number;
  seed: number;
  serverRoot: string;
}

interface Step {
  ms: number;
  peakRssMb: number;
  /**
   * The peak of the server's own memory (RssAnon): VmRSS also counts the file pages a process maps, and a restore's
   * `quick_check` maps the restored data.db (up to 2 GB, src/db/quick-check.ts): page cache, not memory it holds.
   */
  peakAnonMb: number;
  /** Data-set bytes (backups, restores) or archive bytes (the upload) per second. */
  mbPerS: number;
}

export interface LargeResults {
  dataSet: { dbBytes: number; storageBytes: number; files: number };
  archiveBytes: number;
  local: { backup: Step; nextBackup: Step & { reusedMb: number; deflatedMb: number; reuseSkipped: boolean }; restore: Step };
  s3: { backup: Step; objectBytes: number; restore: Step; upload: Step & { copyMatches: boolean; hashMs: number } };
}

/**
 * The large data set: rows of prose (about a third of each row, deflates well) beside a random blob, so the
 * archive stays well over 5 GiB; uploads of 20 KB–2 MB, a third random bytes named `.jpg`.
 */
async function generateLarge(dir: string, o: LargeOptions): Promise<void> {
  const rand = prng(o.seed * 97 + 3);
  let i = 0;
  generateDatabase(dir, o.dbMb, (db) => {
    db.run("CREATE TABLE records (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, payload BLOB NOT NULL, created TEXT NOT NULL)");
    db.run("CREATE INDEX records_created ON records (created)");
    const insert = db.prepare("INSERT INTO records (id, title, body, payload, created) VALUES (?, ?, ?, ?, ?)");
    const batch = db.transaction(() => {
      for (let k = 0; k < 50; k++, i++) {
        const bodyBytes = 8 * 1024 + Math.floor(rand() * 24 * 1024);
        insert.run(hex(rand, 8), words(rand, 8), new TextDecoder().decode(proseBytes(rand, bodyBytes)), noise(2 * bodyBytes, o.seed * 131 + i), timestamp(rand));
      }
    });
    return () => batch();
  });
  const files = prng(o.seed * 97 + 4);
  for (let k = 0, total = 0; total < o.storageMb * MB; k++) {
    const size = 20 * 1024 + Math.floor(files() ** 2 * 2 * 1024 * 1024);
    const random = k % 3 === 0;
    await writeUpload(join(dir, "storage"), "files", `r${hex(files, 7)}`, random ? `photo_${k}.jpg` : `doc_${k}.txt`, random ? noise(size, k + 1) : proseBytes(files, size));
    total += size;
  }
}

/** A step timed through `run`, with the server's peak RSS and the throughput over `bytes`. */
async function timed(server: ServerProcess, bytes: number, run: () => Promise<unknown>): Promise<Step> {
  await settle();
  const rss = sampleRss(server.pid);
  const anon = sampleRss(server.pid, 20, "RssAnon");
  const started = performance.now();
  await run();
  const ms = performance.now() - started;
  return { ms, peakRssMb: rss.stop() / MB, peakAnonMb: anon.stop() / MB, mbPerS: bytes / MB / (ms / 1000) };
}

const describeStep = (s: Step) =>
  `${(s.ms / 1000).toFixed(1)} s, ${s.mbPerS.toFixed(0)} MB/s, peak RSS ${s.peakRssMb.toFixed(0)} MB (own memory ${s.peakAnonMb.toFixed(0)} MB)`;

/**
 * POST /api/backups/upload of the file at `path` as a multipart body streamed from disk: a FormData of a file
 * this size would be read whole first.
 */
async function uploadFile(server: ServerProcess, token: string, path: string, name: string): Promise<void> {
  const boundary = `----backstream-large-${Date.now()}`;
  const head = new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/zip\r\n\r\n`);
  const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`);
  // Pulled, so that the file is read only as fast as the server takes it.
  const file = Bun.file(path).stream().getReader();
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(head),
    async pull(controller) {
      const { value, done } = await file.read();
      if (!done) return controller.enqueue(value);
      controller.enqueue(tail);
      controller.close();
    },
  });
  const response = await fetch(`${server.url}/api/backups/upload`, {
    method: "POST",
    headers: { Authorization: token, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": String(head.length + statSync(path).size + tail.length) },
    body,
  });
  if (response.status !== 204) throw new Error(`upload failed: ${response.status} ${await response.text()}\n${server.output().slice(-2000)}`);
}

async function objectSha256(s3: Awaited<ReturnType<typeof startS3rver>>, key: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of await s3.client().getObject(s3.bucket, key)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function patchS3(server: ServerProcess, token: string, s3: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${server.url}/api/settings`, {
    method: "PATCH",
    headers: { Authorization: token, "content-type": "application/json" },
    body: JSON.stringify({ backups: { s3 } }),
  });
  if (!response.ok) throw new Error(`S3 settings refused: ${response.status} ${await response.text()}`);
}

/** 1% more rows, copied from existing ones with new keys: the app's writes between two backups. */
async function addRows(dataDir: string): Promise<number> {
  const db = createClient({ url: `file:${join(dataDir, "data.db")}` });
  try {
    const result = await db.execute(
      `INSERT INTO records (id, title, body, payload, created)
       SELECT lower(hex(randomblob(8))), title, body, payload, strftime('%Y-%m-%d %H:%M:%fZ', 'now') FROM records
       WHERE rowid IN (SELECT rowid FROM records ORDER BY random() LIMIT (SELECT max(1, count(*) / 100) FROM records))`,
    );
    return result.rowsAffected;
  } finally {
    db.close();
  }
}

export async function measureLarge(o: LargeOptions): Promise<LargeResults> {
  const folder = join(o.cache, `large-${o.dbMb}mb-${o.storageMb}mb-s${o.seed}`);
  // A run killed midway leaves the data set where it worked on it.
  if (!existsSync(folder) && existsSync(`${folder}.work`)) await rename(`${folder}.work`, folder);
  const dataSet = await ensureCached(folder, (temp) => generateLarge(temp, o), (seconds) =>
    log(`[large] generated in ${seconds.toFixed(0)} s`),
  );
  const bytes = dataSetBytes(dataSet);
  const total = bytes.dbBytes + bytes.storageBytes;
  log(`[large] ${(bytes.dbBytes / MB).toFixed(0)} MB db + ${(bytes.storageBytes / MB).toFixed(0)} MB in ${bytes.files} uploads`);
  // Worked on in place (moved, not copied: a copy would take as much disk again); what the server adds is removed
  // before it goes back. A restore puts back the same bytes.
  const work = `${dataSet}.work`;
  await rename(dataSet, work);
  const s3 = await startS3rver("backstream-large");
  const server = await startServerProcess(work, o.serverRoot);
  try {
    let token = await login(server.url);
    // The settings live in data.db: a run before this one left S3 on, pointing at its own s3rver.
    await patchS3(server, token, { enabled: false });
    const backup = await timed(server, total, () => backupOnce(server, token, "large_local.zip"));
    const archive = join(work, "backups", "large_local.zip");
    const archiveBytes = statSync(archive).size;
    log(`[large] local backup: ${describeStep(backup)}; archive ${(archiveBytes / MB).toFixed(0)} MB`);

    const rows = await addRows(work);
    const next = await timed(server, total, () => backupOnce(server, token, "large_next.zip"));
    const reuseSkipped = /block reuse skipped/.test(server.output());
    const reusedMb = loggedNumber(server, "backup created", "reusedBytes", "large_next.zip") / MB;
    const deflatedMb = loggedNumber(server, "backup created", "deflatedBytes", "large_next.zip") / MB;
    await rm(join(work, "backups", "large_next.zip"), { force: true });
    log(`[large] next local backup after ${rows} rows: ${describeStep(next)}; ${reusedMb.toFixed(0)} MB reused, ${deflatedMb.toFixed(0)} MB deflated${reuseSkipped ? "; the log says block reuse was skipped" : ""}`);

    const restore = await timed(server, total, async () => {
      token = (await restoreAndLogin(server, "large_local.zip", work, token)).token;
    });
    log(`[large] local restore: ${describeStep(restore)}`);

    await patchS3(server, token, { enabled: true, endpoint: s3.endpoint, bucket: s3.bucket, region: "us-east-1", accessKey: "S3RVER", secret: "S3RVER", forcePathStyle: true });
    const s3Backup = await timed(server, total, () => backupOnce(server, token, "large_s3.zip"));
    const objectBytes = (await s3.client().statObject(s3.bucket, "large_s3.zip")).size;
    log(`[large] S3 backup: ${describeStep(s3Backup)}; object ${(objectBytes / MB).toFixed(0)} MB`);
    const s3Restore = await timed(server, total, async () => {
      token = (await restoreAndLogin(server, "large_s3.zip", work, token)).token;
    });
    log(`[large] S3 restore: ${describeStep(s3Restore)}`);
    await s3.client().removeObject(s3.bucket, "large_s3.zip");

    // The local archive (still on disk: S3 is on, the local store is not listed) uploaded to S3: streamed to a temp
    // object, checked, then copied to its key over the 5 GiB single-copy limit.
    const upload = await timed(server, archiveBytes, () => uploadFile(server, token, archive, "large_uploaded.zip"));
    const hashStarted = performance.now();
    const localSha = readFileSync(join(work, "backups", ".meta", "large_local.zip.sha256"), "utf8").trim();
    const copyMatches = (await objectSha256(s3, "large_uploaded.zip")) === localSha;
    const hashMs = performance.now() - hashStarted;
    log(`[large] upload to S3 (checked, then copied): ${describeStep(upload)}; the copy's SHA-256 ${copyMatches ? "matches" : "DOES NOT match"} the archive's`);
    return {
      dataSet: bytes,
      archiveBytes,
      local: { backup, nextBackup: { ...next, reusedMb, deflatedMb, reuseSkipped }, restore },
      s3: { backup: s3Backup, objectBytes, restore: s3Restore, upload: { ...upload, copyMatches, hashMs } },
    };
  } finally {
    await server.stop();
    await s3.stop();
    for (const name of readdirSync(work)) if (name !== "data.db" && name !== "storage" && name !== ".complete") await rm(join(work, name), { recursive: true, force: true });
    if (!existsSync(dataSet)) await rename(work, dataSet);
  }
}
