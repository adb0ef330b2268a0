import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ZipReader, Uint8ArrayReader, Uint8ArrayWriter } from "@zip.js/zip.js";
import { seedDataDir } from "../support/data-dir.ts";
import { call, makeTempDir, startTestServer, type TestServer } from "../support/test-server.ts";
import { checkZipIndependently } from "../support/zip-check.ts";

let server: TestServer;
let token: string;

beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir);
  server = await startTestServer({ dir });
  token = server.pb.authStore.token;
});
afterAll(async () => {
  await server.close();
  await import("node:fs/promises").then((fs) => fs.rm(server.dir, { recursive: true, force: true }));
});

const api = (path: string) => `${server.url}${path}`;
const keys = async () => (await server.pb.backups.getFullList()).map((b) => b.key).sort();

describe("backups through the official SDK", () => {
  test("login marks the SDK as superuser", () => {
    expect(server.pb.authStore.isSuperuser).toBe(true);
    expect(server.pb.authStore.record?.email).toBe("admin@example.com");
  });

  test("create with a name, list, download with a file token, delete", async () => {
    await server.pb.backups.create("named.zip");
    const list = await server.pb.backups.getFullList();
    const item = list.find((b) => b.key === "named.zip")!;
    expect(item.size).toBeGreaterThan(1000);
    expect(item.modified).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/);

    const fileToken = await server.pb.files.getToken();
    const url = server.pb.backups.getDownloadURL(fileToken, "named.zip");
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/zip");
    expect(response.headers.get("content-disposition")).toBe("attachment; filename=named.zip");
    expect(response.headers.get("content-length")).toBe(String(item.size));
    const bytes = new Uint8Array(await response.arrayBuffer());
    const digest = createHash("sha256").update(bytes).digest("base64");
    expect(response.headers.get("repr-digest")).toBe(`sha-256=:${digest}:`);

    // an independent reader checks the zip
    const path = join(server.dir, "..", `dl-${Date.now()}.zip`);
    await writeFile(path, bytes);
    try {
      expect(checkZipIndependently(path)).toContain("No errors detected");
    } finally {
      await import("node:fs/promises").then((fs) => fs.rm(path));
    }
    const zip = new ZipReader(new Uint8ArrayReader(bytes));
    const entries = await zip.getEntries();
    const names = entries.map((e) => e.filename);
    expect(names).toContain("data.db");
    expect(names).toContain("storage/col0/rec0/file0.txt");
    expect(names).toContain("storage/photo.jpg");
    expect(names.some((n) => n.startsWith("backups") || n.endsWith("-wal") || n.endsWith("-shm") || n.startsWith(".pb_secret"))).toBe(false);
    expect(entries.some((e) => e.directory)).toBe(false);
    const manifestEntry = entries.find((e) => e.filename === "backstream-manifest.json")!;
    const manifest = JSON.parse(new TextDecoder().decode(await (manifestEntry as any).getData(new Uint8ArrayWriter())));
    expect(manifest.format).toBe(1);
    for (const listed of manifest.entries) {
      const entry = entries.find((e) => e.filename === listed.path)! as any;
      const data: Uint8Array = await entry.getData(new Uint8ArrayWriter());
      expect(data.length).toBe(listed.size);
      expect(createHash("sha256").update(data).digest("hex")).toBe(listed.sha256);
      if (!listed.path.endsWith(".db")) expect(Buffer.from(data).equals(await readFile(join(server.dir, listed.path)))).toBe(true);
    }
    expect(manifest.entries.map((e: { path: string }) => e.path).sort()).toEqual(names.filter((n) => n !== "backstream-manifest.json").sort());
    await zip.close();

    await server.pb.backups.delete("named.zip");
    expect(await keys()).not.toContain("named.zip");
  });

  test("create without a name generates pb_backup_<app>_<UTC timestamp>.zip", async () => {
    const before = new Date();
    await server.pb.backups.create("");
    const generated = (await keys()).find((k) => k.startsWith("pb_backup_acme_"))!;
    expect(generated).toMatch(/^pb_backup_acme_\d{14}\.zip$/);
    const stamp = generated.slice(15, 29);
    const date = new Date(`${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(8, 10)}:${stamp.slice(10, 12)}:${stamp.slice(12, 14)}Z`);
    expect(Math.abs(date.getTime() - before.getTime())).toBeLessThan(5000);
    await server.pb.backups.delete(generated);
  });

  test("Range requests get 206 with the right bytes", async () => {
    await server.pb.backups.create("ranged.zip");
    const fileToken = await server.pb.files.getToken();
    const url = api(`/api/backups/ranged.zip?token=${fileToken}`);
    const whole = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const part = await fetch(url, { headers: { Range: "bytes=10-99" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 10-99/${whole.length}`);
    expect(part.headers.get("content-length")).toBe("90");
    expect(Buffer.from(await part.arrayBuffer()).equals(Buffer.from(whole.subarray(10, 100)))).toBe(true);
    const suffix = await fetch(url, { headers: { Range: "bytes=-5" } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(Buffer.from(whole.subarray(whole.length - 5)))).toBe(true);
    const beyond = await fetch(url, { headers: { Range: `bytes=${whole.length}-` } });
    expect(beyond.status).toBe(416);
    await server.pb.backups.delete("ranged.zip");
  });

  test("percent-encoded keys are decoded: %40test4.zip is @test4.zip", async () => {
    const backups = join(server.dir, "backups");
    await server.pb.backups.create("source.zip");
    await import("node:fs/promises").then((fs) => fs.rename(join(backups, "source.zip"), join(backups, "@test4.zip")));
    const fileToken = await server.pb.files.getToken();
    const response = await fetch(api(`/api/backups/%40test4.zip?token=${fileToken}`));
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    expect((await call(api("/api/backups/%40test4.zip"), { method: "DELETE", token })).status).toBe(204);
    expect((await readdir(backups)).filter((n) => !n.startsWith("."))).not.toContain("@test4.zip");
  });
});

describe("errors, to the character", () => {
  const busy = { data: {}, message: "Try again later - another backup/restore process has already been started.", status: 400 };
  const unauth = { data: {}, message: "The request requires valid record authorization token.", status: 401 };
  const noFileToken = { data: {}, message: "Insufficient permissions to access the resource.", status: 403 };
  const notFound = { data: {}, message: "The requested resource wasn't found.", status: 404 };

  test("every superuser route refuses guests and bad tokens with 401", async () => {
    for (const auth of [undefined, "garbage", "Bearer x.y.z", `${token}x`]) {
      for (const [method, path] of [["GET", "/api/backups"], ["POST", "/api/backups"], ["DELETE", "/api/backups/x.zip"], ["POST", "/api/backups/x.zip/restore"], ["POST", "/api/files/token"]] as const) {
        const res = await call(api(path), { method, ...(auth ? { token: auth } : {}) });
        expect({ path, ...(res.body as object) }).toEqual({ path, ...unauth });
        expect(res.status).toBe(401);
      }
    }
  });

  test("the Bearer prefix is accepted in any case", async () => {
    expect((await call(api("/api/backups"), { token: `bEaReR ${token}` })).status).toBe(200);
  });

  test("download needs a superuser file token in the query, nothing else", async () => {
    await server.pb.backups.create("dl.zip");
    const expired = await import("../../src/auth/jwt.ts").then(({ signJwt }) =>
      signJwt({ id: server.pb.authStore.record!.id, collectionId: "pbc_3142635823", type: "file", exp: Math.floor(Date.now() / 1000) - 10 }, "wrong"));
    for (const query of ["", "?token=", `?token=${token}`, `?token=${expired}`, "?token=abc"]) {
      const res = await call(api(`/api/backups/dl.zip${query}`), { token });
      expect(res.body).toEqual(noFileToken);
      expect(res.status).toBe(403);
    }
    const fileToken = await server.pb.files.getToken();
    expect((await call(api(`/api/backups/missing.zip?token=${fileToken}`))).body).toEqual(notFound);
    expect((await call(api(`/api/backups/..%2Fdata.db?token=${fileToken}`))).body).toEqual(notFound);
    await server.pb.backups.delete("dl.zip");
  });

  test("name rules: first failure wins, nothing is created", async () => {
    await server.pb.backups.create("exists.zip");
    const before = await keys();
    const cases: [unknown, object][] = [
      ["a".repeat(148) + ".zip", { code: "validation_length_out_of_range", message: "The length must be between 1 and 150.", params: { max: 150, min: 1 } }],
      ["UPPER.zip", { code: "validation_match_invalid", message: "Must be in a valid format." }],
      ["a/b.zip", { code: "validation_match_invalid", message: "Must be in a valid format." }],
      ["../x.zip", { code: "validation_match_invalid", message: "Must be in a valid format." }],
      ["noext", { code: "validation_match_invalid", message: "Must be in a valid format." }],
      ["exists.zip", { code: "validation_backup_name_exists", message: "The backup file name is invalid or already exists." }],
    ];
    for (const [name, field] of cases) {
      const res = await call(api("/api/backups"), { method: "POST", token, headers: { "content-type": "application/json" }, body: JSON.stringify({ name }) });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ data: { name: field }, message: "An error occurred while validating the submitted data.", status: 400 });
    }
    expect(await keys()).toEqual(before);
    await server.pb.backups.delete("exists.zip");
  });

  test("a 150-character name is fine, and form bodies work too", async () => {
    const name = "b".repeat(146) + ".zip";
    const res = await call(api("/api/backups"), { method: "POST", token, body: new URLSearchParams({ name }) });
    expect(res.status).toBe(204);
    expect(await keys()).toContain(name);
    await server.pb.backups.delete(name);
  });

  test("malformed JSON and wrong types", async () => {
    const before = await keys();
    const bad = await call(api("/api/backups"), { method: "POST", token, headers: { "content-type": "application/json" }, body: "{nope" });
    expect(bad.body).toEqual({ data: {}, message: "An error occurred while loading the submitted data.", status: 400 });
    const array = await call(api("/api/backups"), { method: "POST", token, headers: { "content-type": "application/json" }, body: "[1]" });
    expect(array.status).toBe(400);
    // A number is not turned into a name: PocketBase cannot load it into its string field at all.
    const wrongType = await call(api("/api/backups"), { method: "POST", token, headers: { "content-type": "application/json" }, body: JSON.stringify({ name: 12 }) });
    expect(wrongType.body).toEqual({ data: {}, message: "An error occurred while loading the submitted data.", status: 400 });
    expect(await keys()).toEqual(before);
  });

  test("bodies over 32 MiB are refused with 413", async () => {
    const res = await call(api("/api/backups"), { method: "POST", token, headers: { "content-type": "application/json" }, body: new Uint8Array(33 * 1024 * 1024).fill(32) });
    expect(res.body).toEqual({ data: {}, message: "Request entity too large.", status: 413 });
  });

  test("delete and restore of a missing key", async () => {
    expect((await call(api("/api/backups/missing.zip"), { method: "DELETE", token })).body).toEqual(notFound);
    expect((await call(api("/api/backups/missing.zip/restore"), { method: "POST", token })).body).toEqual({ data: {}, message: "Missing or invalid backup file.", status: 400 });
  });

  test("unknown routes are 404 with the default message", async () => {
    expect((await call(api("/api/nope"))).body).toEqual(notFound);
    expect((await call(api("/api/backups"), { method: "PUT", token })).status).toBe(404);
  });

  test("auth errors", async () => {
    const path = api("/api/collections/_superusers/auth-with-password");
    const json = { "content-type": "application/json" };
    expect((await call(path, { method: "POST", headers: json, body: JSON.stringify({ identity: "admin@example.com", password: "wrong-password" }) })).body)
      .toEqual({ data: {}, message: "Failed to authenticate.", status: 400 });
    expect((await call(path, { method: "POST", headers: json, body: "{}" })).body).toEqual({
      data: { identity: { code: "validation_required", message: "Cannot be blank." }, password: { code: "validation_required", message: "Cannot be blank." } },
      message: "An error occurred while validating the submitted data.",
      status: 400,
    });
    const byId = await call(api("/api/collections/pbc_3142635823/auth-with-password"), { method: "POST", headers: json, body: JSON.stringify({ identity: "admin@example.com", password: "correct-horse-battery" }) });
    expect(byId.status).toBe(200);
    const record = (byId.body as { record: Record<string, unknown> }).record;
    expect(Object.keys(record).sort()).toEqual(["collectionId", "collectionName", "created", "email", "emailVisibility", "id", "updated", "verified"]);
    expect(JSON.stringify(byId.body)).not.toContain("password");
  });

  test("health shows canBackup to superusers only", async () => {
    expect((await call(api("/api/health"))).body).toEqual({ code: 200, message: "API is healthy.", data: {} });
    expect((await call(api("/api/health"), { token })).body).toEqual({ code: 200, message: "API is healthy.", data: { canBackup: true } });
  });

  test("two concurrent creates: exactly one succeeds, the other is busy", async () => {
    const results = await Promise.all(
      ["race-a.zip", "race-b.zip"].map((name) =>
        call(api("/api/backups"), { method: "POST", token, headers: { "content-type": "application/json" }, body: JSON.stringify({ name }) })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([204, 400]);
    expect(results.find((r) => r.status === 400)!.body).toEqual(busy);
    const created = (await keys()).filter((k) => k.startsWith("race-"));
    expect(created.length).toBe(1);
    await server.pb.backups.delete(created[0]!);
  });
});
