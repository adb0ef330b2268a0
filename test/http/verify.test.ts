import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { MANIFEST_PATH } from "../../src/archive/index.ts";
import { LocalBackupStore } from "../../src/store/local-backup-store.ts";
import { entryDataOffset, sha256Hex, storeBytes, unzipAll, zipAll } from "../support/archives.ts";
import { hashTree, seedDataDir } from "../support/data-dir.ts";
import { call, makeTempDir, startTestServer, type TestServer } from "../support/test-server.ts";

let server: TestServer;
let token: string;
let store: LocalBackupStore;
let good: Uint8Array;
let goodEntries: Map<string, Uint8Array>;

beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir);
  server = await startTestServer({ dir });
  token = server.pb.authStore.token;
  store = new LocalBackupStore(join(dir, "backups"));
  await server.pb.backups.create("good.zip");
  good = new Uint8Array(await readFile(join(dir, "backups", "good.zip")));
  goodEntries = await unzipAll(good);
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
});

const verify = (key: string, auth = token) =>
  call(`${server.url}/api/backups/${encodeURIComponent(key)}/verify`, { method: "POST", token: auth });

/** The good archive's entries with its manifest rewritten by `edit`, zipped again. */
async function rebuilt(edit: (entries: Map<string, Uint8Array>, manifest: { entries: { path: string; size: number; sha256: string }[] }) => void) {
  const entries = new Map(goodEntries);
  const manifest = JSON.parse(new TextDecoder().decode(entries.get(MANIFEST_PATH)!));
  edit(entries, manifest);
  entries.delete(MANIFEST_PATH);
  entries.set(MANIFEST_PATH, new TextEncoder().encode(JSON.stringify(manifest)));
  return zipAll(entries);
}

describe("POST /api/backups/{key}/verify", () => {
  test("a good backup: ok, counts, the archive's SHA-256, no problems; live data untouched", async () => {
    const skip = (rel: string) => rel.startsWith("backups") || rel.includes(".db");
    const before = await hashTree(server.dir, skip);
    const { status, body } = await verify("good.zip");
    expect(status).toBe(200);
    const files = [...goodEntries.keys()].filter((p) => p !== MANIFEST_PATH);
    expect(body).toEqual({
      ok: true,
      entries: files.length,
      bytes: files.reduce((n, p) => n + goodEntries.get(p)!.length, 0),
      sha256: sha256Hex(good),
      problems: [],
    });
    expect(await hashTree(server.dir, skip)).toEqual(before);
    expect((await readdir(server.dir)).filter((n) => n.includes("verify"))).toEqual([]);
    expect(server.ctx.jobs.last).toMatchObject({ kind: "verify", key: "good.zip", phase: "done", error: null });
  });

  test("a flipped byte: the entry's CRC-32 and the archive checksum are both named", async () => {
    const bytes = good.slice();
    bytes[entryDataOffset(bytes, "storage/col0/rec0/file0.txt") + 3]! ^= 0xff;
    await storeBytes(store, "flipped.zip", bytes, sha256Hex(good)); // the checksum kept when it was written
    const { status, body } = await verify("flipped.zip");
    expect(status).toBe(200);
    const report = body as { ok: boolean; problems: string[]; sha256: string };
    expect(report.ok).toBe(false);
    expect(report.sha256).toBe(sha256Hex(bytes));
    expect(report.problems).toHaveLength(2);
    expect(report.problems).toContain("The archive's SHA-256 does not match the one stored with it: the file changed after it was written.");
    expect(report.problems.some((p) => p.startsWith("The entry storage/col0/rec0/file0.txt ") && /corrupt|cannot be read/.test(p))).toBe(true);
    expect(server.ctx.jobs.last).toMatchObject({ kind: "verify", key: "flipped.zip", phase: "failed" });
  });

  test("a wrong manifest checksum is named; every problem is reported, not just the first", async () => {
    const bytes = await rebuilt((_, manifest) => {
      for (const entry of manifest.entries) {
        if (entry.path === "storage/photo.jpg" || entry.path === "storage/col1/rec1/file1.txt") entry.sha256 = "0".repeat(64);
      }
    });
    await storeBytes(store, "bad-manifest.zip", bytes);
    const { body } = await verify("bad-manifest.zip");
    expect((body as { problems: string[] }).problems.sort()).toEqual([
      "The checksum of storage/col1/rec1/file1.txt does not match the manifest.",
      "The checksum of storage/photo.jpg does not match the manifest.",
    ]);
    expect((body as { ok: boolean }).ok).toBe(false);
  });

  test("a missing entry is named", async () => {
    const bytes = await rebuilt((entries) => entries.delete("storage/col1/rec1/file1.txt"));
    await storeBytes(store, "missing-entry.zip", bytes);
    const { body } = await verify("missing-entry.zip");
    expect(body).toMatchObject({ ok: false, problems: ["The entry storage/col1/rec1/file1.txt listed in the manifest is missing."] });
  });

  test("a database that fails PRAGMA quick_check (checksums all fine) is named", async () => {
    const bytes = await rebuilt((entries, manifest) => {
      const db = entries.get("data.db")!.slice();
      db.fill(0x41, 4096, 8192); // overwrite the second page: the header still says SQLite
      entries.set("data.db", db);
      const entry = manifest.entries.find((e) => e.path === "data.db")!;
      entry.sha256 = sha256Hex(db);
    });
    await storeBytes(store, "bad-db.zip", bytes);
    const { body } = await verify("bad-db.zip");
    const problems = (body as { problems: string[] }).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toStartWith("data.db fails PRAGMA quick_check");
  });

  test("a key with @ (percent-encoded in the path)", async () => {
    await storeBytes(store, "@auto_pb_backup_acme_20260101000000.zip", good);
    expect(await verify("@auto_pb_backup_acme_20260101000000.zip")).toMatchObject({ status: 200, body: { ok: true, problems: [] } });
  });

  test("auth, a missing key, and the lock", async () => {
    expect((await verify("good.zip", "")).status).toBe(401);
    expect(await verify("nope.zip")).toMatchObject({ status: 404 });
    const release = (server.ctx.backups as unknown as { deps: { lock: { acquire(h: unknown): () => void } } }).deps.lock.acquire({ kind: "create", key: "x.zip" });
    try {
      expect(await verify("good.zip")).toMatchObject({
        status: 400,
        body: { data: {}, message: "Try again later - another backup/restore process has already been started.", status: 400 },
      });
    } finally {
      release();
    }
  });
});
