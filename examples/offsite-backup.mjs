#!/usr/bin/env node
// A nightly off-site backup through the official `pocketbase` SDK, for cron: create a backup, have the server
// test it (checksums and `quick_check`, without touching live data), download it with its SHA-256 checked
// against the server's `Repr-Digest`, then keep only the newest copies on both sides. Exit 0 on success, 1 on
// any failure, with one line on stderr saying what failed; the password never appears in the output.
//
//   BACKSTREAM_URL=http://127.0.0.1:8090 BACKSTREAM_EMAIL=admin@example.com BACKSTREAM_PASSWORD=… \
//   OFFSITE_DIR=/mnt/offsite KEEP_LOCAL=14 KEEP_ON_SERVER=3 node examples/offsite-backup.mjs
//
// Outside this repository, `npm install pocketbase` next to the script. Only this script's own backups (named
// `<PREFIX><UTC date>_<time>_<ms>.zip`) are ever deleted: manual, uploaded and scheduled ones are left alone.
import { createHash } from "node:crypto";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import PocketBase from "pocketbase";

const env = process.env;
const url = env.BACKSTREAM_URL || "http://127.0.0.1:8090";
const prefix = env.PREFIX || "offsite_";
const keepLocal = positiveInteger("KEEP_LOCAL", 7);
const keepOnServer = positiveInteger("KEEP_ON_SERVER", 3);
const dir = env.OFFSITE_DIR;
if (!dir || !env.BACKSTREAM_EMAIL || !env.BACKSTREAM_PASSWORD) {
  fail("Set OFFSITE_DIR, BACKSTREAM_EMAIL and BACKSTREAM_PASSWORD (and BACKSTREAM_URL if not the default).");
}
if (!/^[a-z0-9_-]*$/.test(prefix)) fail("PREFIX may hold only a-z, 0-9, _ and -, as backup names do.");
const ownName = new RegExp(`^${prefix}\\d{8}_\\d{6}_\\d{3}\\.zip$`);

try {
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  await step("log in", () => pb.collection("_superusers").authWithPassword(env.BACKSTREAM_EMAIL, env.BACKSTREAM_PASSWORD));

  const key = `${prefix}${new Date().toISOString().replace(/[-:]/g, "").replace("T", "_").replace(".", "_").slice(0, 19)}.zip`;
  await step("create the backup", () => pb.backups.create(key));

  const report = await step("verify it", () => pb.send(`/api/backups/${encodeURIComponent(key)}/verify`, { method: "POST" }));
  if (!report.ok) fail(`The server's check of ${key} failed: ${report.problems.join(" ")}`);

  const token = await step("get a file token", () => pb.files.getToken());
  const copy = await download(pb.backups.getDownloadURL(token, key), key);

  const removedLocal = await pruneLocal();
  const removedOnServer = await pruneServer(pb);
  console.log(`${key}: ${copy.size} bytes, sha256 ${copy.sha256}, copied to ${join(dir, key)}; removed ${removedLocal} old copies here and ${removedOnServer} on the server`);
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

/** Streams the archive to `<dir>/.<key>.part`, hashing as it goes; renamed into place only if the digest matches. */
async function download(downloadUrl, key) {
  const response = await fetch(downloadUrl);
  if (!response.ok || !response.body) throw new Error(`Could not download ${key}: HTTP ${response.status}.`);
  const expected = /sha-256=:([A-Za-z0-9+/=]+):/.exec(response.headers.get("repr-digest") ?? "")?.[1];
  if (!expected) throw new Error(`The server sent no Repr-Digest for ${key}: is it backstream?`);
  await mkdir(dir, { recursive: true });
  const part = join(dir, `.${key}.part`);
  const file = await open(part, "w");
  const hash = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of response.body) {
      hash.update(chunk);
      size += chunk.length;
      await file.write(chunk);
    }
    await file.sync(); // on disk before it counts as a copy
  } finally {
    await file.close();
  }
  const actual = hash.digest();
  if (!actual.equals(Buffer.from(expected, "base64"))) {
    await rm(part, { force: true });
    throw new Error(`The download of ${key} does not match the server's SHA-256: nothing was kept; run again.`);
  }
  await rename(part, join(dir, key));
  return { size, sha256: actual.toString("hex") };
}

/** Keeps the newest `keepLocal` of this script's copies (the names sort by time). */
async function pruneLocal() {
  const old = (await readdir(dir)).filter((name) => ownName.test(name)).sort().reverse().slice(keepLocal);
  for (const name of old) await rm(join(dir, name), { force: true });
  return old.length;
}

/** Keeps the newest `keepOnServer` of this script's backups on the server. */
async function pruneServer(pb) {
  const backups = await step("list the backups", () => pb.backups.getFullList());
  const old = backups.map((b) => b.key).filter((key) => ownName.test(key)).sort().reverse().slice(keepOnServer);
  for (const key of old) await step(`delete ${key}`, () => pb.backups.delete(key));
  return old.length;
}

/** Runs one call, turning the SDK's errors into a sentence that names the step and the server's message. */
async function step(what, call) {
  try {
    return await call();
  } catch (error) {
    const message = error?.response?.message || error?.message || String(error);
    throw new Error(`Could not ${what} (${error?.status ? `HTTP ${error.status}: ` : ""}${message})`);
  }
}

function positiveInteger(name, fallback) {
  const value = env[name] ? Number(env[name]) : fallback;
  if (!Number.isInteger(value) || value < 1) fail(`${name} must be a whole number of at least 1.`);
  return value;
}

function fail(message) {
  console.error(`offsite-backup: ${message}`);
  process.exit(1);
}
