// Encrypted backups end to end, through the real server over HTTP: made with the configured key (WinZip AES-256),
// opened by 7-Zip with it and not without, uploaded to another server and restored there byte for byte with the
// key (an older key listed there opens it), refused with a clear error without the right key, refused as corrupt
// when damaged; the key never shows in answers or logs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { INTERNAL_ROOT_ENTRIES } from "../../src/fs/data-dir.ts";
import { hashTree, seedDataDir } from "../support/data-dir.ts";
import { skipWithout7zip } from "../support/seven-zip.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";

const KEY = "correct horse battery staple 7";
const OTHER_KEY = "a different key of twenty chars";
const NO_KEY = "The backup is encrypted and no key is configured to open it.";
const WRONG_KEY = "The backup is encrypted and the configured key does not open it.";

const servers: TestServer[] = [];
let scratch: string;
let made: TestServer;
let archive: Uint8Array;

async function server(env: Record<string, string> = {}, seed = true): Promise<TestServer> {
  const dir = await makeTempDir();
  if (seed) await seedDataDir(dir, { rows: 50, files: 4 });
  const s = await startTestServer({ dir, env });
  servers.push(s);
  return s;
}

const liveData = (dir: string) =>
  hashTree(dir, (rel) => rel === "backups" || rel === ".pb_temp_to_delete" || INTERNAL_ROOT_ENTRIES.has(rel) || rel.endsWith("-shm") || rel.endsWith("-wal") || rel === "data.db");

async function upload(to: TestServer, bytes: Uint8Array, name: string) {
  const form = new FormData();
  form.append("file", new File([bytes as BlobPart], name));
  return call(`${to.url}/api/backups/upload`, { method: "POST", body: form, token: to.pb.authStore.token });
}

async function restore(on: TestServer, key: string) {
  await on.pb.backups.restore(key);
  return waitFor(() => !on.ctx.backups.busy && on.ctx.jobs.last?.kind === "restore" && on.ctx.jobs.last, "the restore");
}

beforeAll(async () => {
  scratch = await makeTempDir();
  made = await server({ BACKSTREAM_BACKUP_PASSWORD: KEY });
  await made.pb.backups.create("enc.zip");
  archive = new Uint8Array(await readFile(join(made.dir, "backups", "enc.zip")));
  await writeFile(join(scratch, "enc.zip"), archive);
});
afterAll(async () => {
  for (const s of servers) {
    await s.close();
    await rm(s.dir, { recursive: true, force: true });
  }
  await rm(scratch, { recursive: true, force: true });
});

describe("encrypted backups", () => {
  test("every entry is WinZip AES-256 (method 99), names stay listed, and the server says encrypted without the key", async () => {
    const listing = execFileSync("unzip", ["-Z", "-v", join(scratch, "enc.zip")]).toString();
    expect(listing).toContain("data.db");
    expect(listing).toContain("backstream-manifest.json");
    expect(listing).not.toMatch(/compression method:\s+(none|deflated)/);
    expect(listing.match(/file security status:\s+encrypted/g)?.length).toBe(listing.match(/There is no file comment/g)?.length);
    const settings = await call(`${made.url}/api/settings`, { token: made.pb.authStore.token });
    expect((settings.body as { backups: Record<string, unknown> }).backups.encryptionKeySet).toBe(true);
    expect(JSON.stringify(settings.body)).not.toContain(KEY);
    // The backup reused nothing (an earlier archive's pieces are ciphertext): it says so in the log, never the key.
    expect(made.logs.join("\n")).not.toContain(KEY);
  });

  test.skipIf(skipWithout7zip)("7-Zip tests and extracts it with the key, byte for byte; with a wrong key it extracts nothing", async () => {
    const archivePath = join(scratch, "enc.zip");
    const ok = spawnSync("7zz", ["t", `-p${KEY}`, archivePath], { stdio: ["ignore", "pipe", "pipe"] });
    expect(ok.status).toBe(0);
    expect(ok.stdout.toString()).toContain("Everything is Ok");
    const out = join(scratch, "x");
    expect(spawnSync("7zz", ["x", "-y", `-p${KEY}`, `-o${out}`, archivePath], { stdio: ["ignore", "pipe", "pipe"] }).status).toBe(0);
    const extracted = await hashTree(out, (rel) => rel === "backstream-manifest.json" || rel === "data.db");
    expect(extracted).toEqual(await liveData(made.dir));
    const wrongOut = join(scratch, "wrong");
    const wrong = spawnSync("7zz", ["x", "-y", "-pnot-the-key", `-o${wrongOut}`, archivePath], { stdio: ["ignore", "pipe", "pipe"] });
    expect(wrong.status).not.toBe(0);
    const db = join(wrongOut, "data.db");
    expect(!existsSync(db) || (await readFile(db)).length === 0).toBe(true);
  });

  test("downloaded, uploaded to a server holding the key among its older ones, and restored there byte for byte", async () => {
    const target = await server({ BACKSTREAM_BACKUP_PASSWORD: OTHER_KEY, BACKSTREAM_BACKUP_OLD_PASSWORDS: `older one that is long enough\n${KEY}` });
    const downloaded = new Uint8Array(await (await fetch(made.pb.backups.getDownloadURL(await made.pb.files.getToken(), "enc.zip"))).arrayBuffer());
    expect(Buffer.compare(downloaded, archive)).toBe(0);
    expect((await upload(target, downloaded, "enc.zip")).status).toBe(204);
    const verified = await target.pb.send("/api/backups/enc.zip/verify", { method: "POST" });
    expect(verified).toMatchObject({ ok: true, problems: [] });
    const job = await restore(target, "enc.zip");
    expect(job.error).toBeNull();
    expect(await liveData(target.dir)).toEqual(await liveData(made.dir));
    // The restored data.db holds the superusers of the server the backup came from.
    await target.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
    expect(target.logs.join("\n")).not.toContain(KEY);
  });

  test("without a key, or with the wrong one: the clear error on upload, verify and restore, and nothing changes", async () => {
    const plain = await server();
    const refused = await upload(plain, archive, "enc.zip");
    expect(refused.status).toBe(400);
    expect((refused.body as { data: { file: { message: string } } }).data.file.message).toBe(NO_KEY);
    expect(await plain.pb.backups.getFullList()).toEqual([]);

    // The same archive placed in the backups folder by hand: verify and restore name the key, never "corrupt".
    await mkdir(join(plain.dir, "backups"), { recursive: true });
    await writeFile(join(plain.dir, "backups", "enc.zip"), archive);
    const verify = await call(`${plain.url}/api/backups/enc.zip/verify`, { method: "POST", token: plain.pb.authStore.token });
    expect(verify).toMatchObject({ status: 400, body: { message: NO_KEY } });
    const before = await liveData(plain.dir);
    const job = await restore(plain, "enc.zip");
    expect(job).toMatchObject({ phase: "failed", error: NO_KEY });
    expect(await liveData(plain.dir)).toEqual(before);

    const wrong = await server({ BACKSTREAM_BACKUP_PASSWORD: OTHER_KEY });
    const answer = await upload(wrong, archive, "enc.zip");
    expect((answer.body as { data: { file: { message: string } } }).data.file.message).toBe(WRONG_KEY);
    expect(await wrong.pb.backups.getFullList()).toEqual([]);
  });

  test("a flipped byte inside an encrypted entry is refused as corrupt, not as a key problem", async () => {
    const target = await server({ BACKSTREAM_BACKUP_PASSWORD: KEY });
    const damaged = new Uint8Array(archive);
    damaged[Math.floor(damaged.length / 3)]! ^= 0x40;
    const answer = await upload(target, damaged, "damaged.zip");
    expect(answer.status).toBe(400);
    const message = (answer.body as { data: { file: { message: string } } }).data.file.message;
    expect(message).not.toBe(WRONG_KEY);
    expect(message).toMatch(/corrupt|does not match|damaged/);
    expect(await target.pb.backups.getFullList()).toEqual([]);
  });

  test("the key set through the settings: too short is refused; once set, new backups are encrypted and restore", async () => {
    const s = await server();
    const patch = (body: unknown) => call(`${s.url}/api/settings`, { method: "PATCH", token: s.pb.authStore.token, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const short = await patch({ backups: { encryptionKey: "short" } });
    expect(short.body).toMatchObject({ status: 400, data: { backups: { encryptionKey: { code: "validation_length_out_of_range" } } } });
    const saved = await patch({ backups: { encryptionKey: KEY } });
    expect(saved.status).toBe(200);
    expect(JSON.stringify(saved.body)).not.toContain(KEY);
    expect((saved.body as { backups: Record<string, unknown> }).backups.encryptionKeySet).toBe(true);
    await s.pb.backups.create("from_settings.zip");
    expect(execFileSync("unzip", ["-Z", "-v", join(s.dir, "backups", "from_settings.zip")]).toString()).toMatch(/file security status:\s+encrypted/);
    const job = await restore(s, "from_settings.zip");
    expect(job.error).toBeNull();
    expect(s.logs.join("\n")).not.toContain(KEY);
  });
});
