import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import PocketBase from "pocketbase";
import { S3BackupStore } from "../../src/store/s3-backup-store.ts";
import { hashTree, readPosts, seedDataDir } from "../support/data-dir.ts";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.ts";
import { startS3rver, type S3Server } from "../support/s3rver.ts";
import { spawnServer } from "../support/server-process.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";
import { checkZipIndependently } from "../support/zip-check.ts";

const PART = 5 * 1024 * 1024;

let s3: S3Server;
let proxy: FaultProxy;
let server: TestServer;

/** Random (incompressible) files, so the archive is as large as the data: here about 4 parts of 5 MiB. */
async function addPhotos(dir: string, count: number, size: number) {
  await mkdir(join(dir, "storage", "photos"), { recursive: true });
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(size);
    for (let at = 0; at < size; at += 65536) crypto.getRandomValues(data.subarray(at, Math.min(size, at + 65536)));
    await writeFile(join(dir, "storage", "photos", `p${i}.jpg`), data);
  }
}

const bucketStore = () => new S3BackupStore(s3.descriptor());
/** Downloads `key` through the server: its SHA-256 is the one stored with it, and an independent reader accepts it. */
async function expectWholeInBucket(key: string) {
  const token = await server.pb.files.getToken();
  const bytes = new Uint8Array(await (await fetch(server.pb.backups.getDownloadURL(token, key))).arrayBuffer());
  expect(createHash("sha256").update(bytes).digest("hex")).toBe((await bucketStore().stat(key)).sha256!);
  const path = join(server.dir, "..", `${key}-${Date.now()}.zip`);
  await writeFile(path, bytes);
  try {
    expect(checkZipIndependently(path)).toContain("No errors detected");
  } finally {
    await rm(path);
  }
}

const state = async (dir: string) => ({
  posts: await readPosts(join(dir, "data.db")),
  files: await hashTree(join(dir, "storage")),
});

beforeAll(async () => {
  s3 = await startS3rver();
  proxy = startFaultProxy(s3.endpoint);
  const dir = await makeTempDir();
  await seedDataDir(dir, { rows: 500 });
  await addPhotos(dir, 4, 4_500_000);
  server = await startTestServer({ dir, env: { BACKSTREAM_S3_PART_MB: "5", BACKSTREAM_S3_RETRY_BASE_MS: "20" } });
  await server.pb.settings.update({
    backups: { s3: { enabled: true, endpoint: proxy.endpoint, bucket: s3.bucket, region: "us-east-1", accessKey: "S3RVER", secret: "S3RVER", forcePathStyle: true } },
  });
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
  await proxy.stop();
  await s3.stop();
});

describe("backups in S3, through the official SDK", () => {
  test("create (several parts), list, download and compare, restore and compare, delete", async () => {
    const before = await state(server.dir);
    proxy.uploadedParts = 0;
    proxy.copies = 0;
    await server.pb.backups.create("in_s3.zip");
    expect(proxy.uploadedParts).toBeGreaterThanOrEqual(3);
    // Uploaded straight to its key: no temp object copied over at the end (a second full write in the bucket).
    expect(proxy.copies).toBe(0);
    // nothing went to the local folder
    expect((await readdir(join(server.dir, "backups")).catch(() => [])).filter((n) => !n.startsWith("."))).toEqual([]);
    const listed = (await server.pb.backups.getFullList()).find((b) => b.key === "in_s3.zip")!;
    expect(listed.size).toBeGreaterThan(3 * PART);
    const stored = await bucketStore().stat("in_s3.zip");
    expect(stored.size).toBe(listed.size);

    proxy.sidecarReads = 0;
    const response = await fetch(server.pb.backups.getDownloadURL(await server.pb.files.getToken(), "in_s3.zip"));
    expect(response.status).toBe(200);
    const bytes = new Uint8Array(await response.arrayBuffer());
    // The checksum is read once for the download's Repr-Digest; opening the stream only needs the object's size.
    expect(proxy.sidecarReads).toBe(1);
    expect(bytes.length).toBe(listed.size);
    const sha = createHash("sha256").update(bytes).digest();
    expect(stored.sha256).toBe(sha.toString("hex"));
    expect(response.headers.get("repr-digest")).toBe(`sha-256=:${sha.toString("base64")}:`);
    const path = join(server.dir, "..", `s3-${Date.now()}.zip`);
    await writeFile(path, bytes);
    try {
      expect(checkZipIndependently(path)).toContain("No errors detected");
    } finally {
      await rm(path);
    }
    const part = await fetch(server.pb.backups.getDownloadURL(await server.pb.files.getToken(), "in_s3.zip"), { headers: { Range: `bytes=${PART - 10}-${PART + 9}` } });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(PART - 10, PART + 10));

    // restore from the bucket, with the uploads gone: every entry is read from it
    await rm(join(server.dir, "storage"), { recursive: true });
    const restoreFromBucket = async () => {
      proxy.rangeBytesRead = 0;
      await server.pb.backups.restore("in_s3.zip");
      const job = await waitFor(() => !server.ctx.backups.busy && server.ctx.jobs.last?.kind === "restore" && server.ctx.jobs.last, "the restore");
      expect(job.error).toBeNull();
      expect(await state(server.dir)).toEqual(before);
      await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
      return proxy.rangeBytesRead;
    };
    // Read once from the bucket, not once per reader: with one cached window the restore's three readers evicted
    // each other's and this restore fetched 3.5 times the archive.
    const fetchedAll = await restoreFromBucket();
    expect(fetchedAll).toBeGreaterThanOrEqual(listed.size);
    expect(fetchedAll).toBeLessThanOrEqual(listed.size * 1.05);
    // Again with one photo changed and one gone: those two are extracted, and the rest, unchanged, copied from
    // storage/. Their bytes are still fetched, once: the restore hashes the whole archive to prove it is the one
    // whose SHA-256 the bucket keeps, before anything is replaced.
    await writeFile(join(server.dir, "storage", "photos", "p0.jpg"), "changed");
    await rm(join(server.dir, "storage", "photos", "p1.jpg"));
    const fetchedSome = await restoreFromBucket();
    expect(fetchedSome).toBeGreaterThanOrEqual(listed.size);
    expect(fetchedSome).toBeLessThanOrEqual(listed.size * 1.05);
    expect(server.logs.findLast((l) => l.includes("backup restored"))).toContain(`"copiedFromLive":${Object.keys(before.files).length - 2}`);

    // Its checksum lives beside it (its metadata was fixed before the checksum was known) and goes with it.
    const sidecar = () => s3.client().statObject(s3.bucket, ".meta/in_s3.zip.sha256").then(() => "present", () => "gone");
    expect(await sidecar()).toBe("present");
    await server.pb.backups.delete("in_s3.zip");
    expect(await sidecar()).toBe("gone");
    expect((await server.pb.backups.getFullList()).map((b) => b.key)).not.toContain("in_s3.zip");
    expect((await bucketStore().list()).map((b) => b.key)).not.toContain("in_s3.zip");
  });

  test("a listing that lags behind still shows a backup just created", async () => {
    proxy.hideNewestInListings = 3;
    await server.pb.backups.create("lagging.zip");
    expect((await server.pb.backups.getFullList()).map((b) => b.key)).toContain("lagging.zip");
    expect(proxy.hideNewestInListings).toBe(0); // the lagging listings were seen, and retried past
    await server.pb.backups.delete("lagging.zip");
  });

  test("one 503 and one dropped connection during the multipart upload: the backup still succeeds", async () => {
    proxy.failUploadParts = 1;
    proxy.dropUploadParts = 1;
    await server.pb.backups.create("flaky.zip");
    expect(proxy.failUploadParts).toBe(0);
    expect(proxy.dropUploadParts).toBe(0);
    await expectWholeInBucket("flaky.zip");
    await server.pb.backups.delete("flaky.zip");
  });

  test("on a slow link two parts upload at once, never more, and the backup is whole", async () => {
    proxy.uploadPartDelayMs = 500;
    proxy.maxUploadPartsAtOnce = 0;
    try {
      await server.pb.backups.create("slow_link.zip");
    } finally {
      proxy.uploadPartDelayMs = 0;
    }
    expect(proxy.maxUploadPartsAtOnce).toBe(2);
    await expectWholeInBucket("slow_link.zip");
    await server.pb.backups.delete("slow_link.zip");
  });

  test("a completed upload whose answer is lost: the backup is published whole, with its checksum", async () => {
    proxy.loseCompletionAnswers = 1;
    await server.pb.backups.create("answer_lost.zip");
    expect(proxy.loseCompletionAnswers).toBe(0);
    await expectWholeInBucket("answer_lost.zip");
    await server.pb.backups.delete("answer_lost.zip");
  });

  test("a permanent outage: a clear error, no object left, the lock released", async () => {
    proxy.down();
    try {
      const post = (body: object) =>
        call(`${server.url}/api/backups`, { method: "POST", token: server.pb.authStore.token, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      // a name is checked against the bucket first, and that check names the problem
      expect((await post({ name: "outage.zip" })).body).toEqual({ data: {}, message: "Failed to look up the backup: the S3 endpoint cannot be reached (ECONNREFUSED).", status: 400 });
      // a generated name goes straight to the job, which fails with the spec's message and keeps the cause
      expect((await post({})).body).toEqual({ data: {}, message: "Failed to create backup.", status: 400 });
      expect(server.ctx.jobs.last?.error).toBe("Failed to start the upload: the S3 endpoint cannot be reached (ECONNREFUSED).");
      const list = await call(`${server.url}/api/backups`, { token: server.pb.authStore.token });
      expect(list.status).toBe(400);
      expect((list.body as { message: string }).message).toMatch(/the S3 endpoint cannot be reached/);
      expect(JSON.stringify(list.body)).not.toContain("S3RVER");
    } finally {
      proxy.up();
    }
    expect(server.ctx.backups.busy).toBe(false);
    expect((await bucketStore().list()).map((b) => b.key)).not.toContain("outage.zip");
    await server.pb.backups.create("after_outage.zip");
    await server.pb.backups.delete("after_outage.zip");
  });

  test("an outage in the middle of a restore: the job names the store's failure, not a corrupt backup, and nothing changes", async () => {
    await server.pb.backups.create("restore_outage.zip");
    const backedUp = await state(server.dir);
    await rm(join(server.dir, "storage", "photos"), { recursive: true }); // the photos must come from the bucket
    const before = await state(server.dir);
    const restore = async () => {
      await server.pb.backups.restore("restore_outage.zip");
      return waitFor(() => !server.ctx.backups.busy && server.ctx.jobs.last?.kind === "restore" && server.ctx.jobs.last, "the restore");
    };
    // The end record and the first windows of the archive are read, then every ranged read fails.
    proxy.rangeBytesRead = 0;
    proxy.failRangeReadsAfterBytes = 6 * 1024 * 1024;
    try {
      const failed = await restore();
      expect(failed.error).toBe("Failed to read the backup: S3 answered HTTP 503.");
      // A verify that cannot read the backup fails the same way, and finds no problems it cannot know of.
      const verify = await call(`${server.url}/api/backups/restore_outage.zip/verify`, { method: "POST", token: server.pb.authStore.token });
      expect(verify.body).toEqual({ data: {}, message: "Failed to read the backup: S3 answered HTTP 503.", status: 400 });
    } finally {
      proxy.failRangeReadsAfterBytes = Infinity;
    }
    expect(await state(server.dir)).toEqual(before);
    // The backup was never at fault: with the bucket back it restores.
    const restored = await restore();
    expect(restored.error).toBeNull();
    expect(await state(server.dir)).toEqual(backedUp);
    await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
    await server.pb.backups.delete("restore_outage.zip");
  });

  test("an outage in the middle of an upload aborts it: no object is published", async () => {
    // drop every part from the second on: the retries run out and the write aborts
    proxy.dropUploadParts = 1000;
    try {
      const res = await call(`${server.url}/api/backups`, { method: "POST", token: server.pb.authStore.token, headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "half.zip" }) });
      expect(res.status).toBe(400);
    } finally {
      proxy.dropUploadParts = 0;
    }
    expect((await bucketStore().list()).map((b) => b.key)).not.toContain("half.zip");
  });
});

describe("memory with S3", () => {
  test("a backup many parts large keeps the server's memory flat: a 3x larger backup needs no more", async () => {
    const dir = await makeTempDir();
    try {
      await seedDataDir(dir, { rows: 100 });
      await addPhotos(dir, 5, 5_000_000); // 25 MB of incompressible files: 5 parts of 5 MiB
      const proc = await spawnServer(dir, {
        BACKSTREAM_S3_PART_MB: "5",
        PB_BACKUPS_S3_ENDPOINT: s3.endpoint,
        PB_BACKUPS_S3_BUCKET: s3.bucket,
        PB_BACKUPS_S3_REGION: "us-east-1",
        PB_BACKUPS_S3_ACCESS_KEY: "S3RVER",
        PB_BACKUPS_S3_SECRET: "S3RVER",
        PB_BACKUPS_S3_FORCE_PATH_STYLE: "true",
      });
      const peakRss = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${proc.child.pid}/status`, "utf8"))![1]) * 1024;
      try {
        const pb = new PocketBase(proc.url);
        await pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
        await pb.backups.create("small_in_s3.zip");
        const small = await peakRss();
        const smallSize = (await bucketStore().stat("small_in_s3.zip")).size;
        await addPhotos(dir, 15, 5_000_000); // now 75 MB: 15 parts
        await pb.backups.create("large_in_s3.zip");
        const large = await peakRss();
        const largeSize = (await bucketStore().stat("large_in_s3.zip")).size;
        console.log(`S3 backups in 5 MiB parts: ${(smallSize / 1e6).toFixed(0)} MB → server peak RSS ${(small / 1e6).toFixed(0)} MB; ${(largeSize / 1e6).toFixed(0)} MB → ${(large / 1e6).toFixed(0)} MB`);
        expect(largeSize).toBeGreaterThan(14 * PART);
        expect(largeSize - smallSize).toBeGreaterThan(45 * 1024 * 1024);
        // 50 MB more data, and the peak moves by far less: nothing is held in proportion to the archive
        expect(large - small).toBeLessThan(24 * 1024 * 1024);
        await pb.backups.delete("small_in_s3.zip");
        await pb.backups.delete("large_in_s3.zip");
      } finally {
        await proc.kill("SIGTERM");
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
