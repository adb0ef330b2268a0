import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { startS3rver, type S3Server } from "../support/s3rver.ts";
import { call, startTestServer, type TestServer } from "../support/test-server.ts";

let server: TestServer;
let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3rver();
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
  await s3.stop();
});

const defaults = { cron: "", cronMaxKeep: 3, s3: { enabled: false, bucket: "", region: "", endpoint: "", accessKey: "", forcePathStyle: false } };
const s3Settings = () => ({ enabled: true, bucket: s3.bucket, region: "us-east-1", endpoint: s3.endpoint, accessKey: "S3RVER", secret: "S3RVER", forcePathStyle: true });

describe("settings through the official SDK", () => {
  test("getAll shows the backups section without the secret", async () => {
    const settings = await server.pb.settings.getAll();
    expect(settings.backups).toEqual(defaults);
  });

  test("update saves, returns the settings, never the secret; a PATCH without secret keeps it", async () => {
    const saved = await server.pb.settings.update({ backups: { cron: "0 3 * * *", cronMaxKeep: 2, s3: s3Settings() } });
    expect(saved.backups).toEqual({ cron: "0 3 * * *", cronMaxKeep: 2, s3: { ...s3Settings(), secret: undefined } });
    expect(Object.keys(saved.backups.s3)).not.toContain("secret");
    // later changes leave the stored secret alone: the connection test still authenticates
    await server.pb.settings.update({ backups: { s3: { region: "us-east-1" } } });
    expect(await server.pb.settings.testS3("backups")).toBe(true);
    await server.pb.settings.update({ backups: { cron: "", s3: { enabled: false } } });
  });

  test("testS3 names the problem and never shows the secret", async () => {
    await server.pb.settings.update({ backups: { s3: { ...s3Settings(), bucket: "no-such-bucket", secret: "very-secret-value" } } });
    const res = await call(`${server.url}/api/settings/test/s3`, { method: "POST", token: server.pb.authStore.token, headers: { "content-type": "application/json" }, body: JSON.stringify({ filesystem: "backups" }) });
    expect(res.status).toBe(400);
    expect((res.body as { message: string }).message).toBe('Failed to initialize the S3 storage: the bucket "no-such-bucket" does not exist.');
    expect(JSON.stringify(res.body)).not.toContain("very-secret-value");
    const wrongKey = await server.pb.settings.update({ backups: { s3: { bucket: s3.bucket, accessKey: "WRONG" } } }).then(() =>
      call(`${server.url}/api/settings/test/s3`, { method: "POST", token: server.pb.authStore.token, headers: { "content-type": "application/json" }, body: JSON.stringify({ filesystem: "backups" }) }));
    expect((wrongKey.body as { message: string }).message).toMatch(/^Failed to initialize the S3 storage: S3 refused the credentials \(\w+\)\.$/);
    expect(server.logs.join("\n")).not.toContain("very-secret-value");
    await server.pb.settings.update({ backups: { s3: { enabled: false, accessKey: "S3RVER" } } });
  });

  test("validation errors are nested like PocketBase's, and nothing is saved", async () => {
    const token = server.pb.authStore.token;
    const patch = (backups: unknown) =>
      call(`${server.url}/api/settings`, { method: "PATCH", token, headers: { "content-type": "application/json" }, body: JSON.stringify({ backups }) });
    const before = await server.pb.settings.getAll();
    const bad = await patch({ cron: "every day", s3: { enabled: true, bucket: "", endpoint: "not a url", accessKey: "" } });
    expect(bad.status).toBe(400);
    const body = bad.body as { message: string; data: { backups: { cron: { code: string }; s3: Record<string, { code: string; message: string }> } } };
    expect(body.message).toBe("An error occurred while validating the submitted data.");
    expect(body.data.backups.cron.code).toBe("validation_invalid_cron");
    expect(body.data.backups.s3.bucket).toEqual({ code: "validation_required", message: "Cannot be blank." });
    expect(body.data.backups.s3.endpoint).toEqual({ code: "validation_is_url", message: "Must be a valid URL." });
    expect(body.data.backups.s3.accessKey).toEqual({ code: "validation_required", message: "Cannot be blank." });
    const keep = await patch({ cron: "@daily", cronMaxKeep: 0 });
    expect((keep.body as { data: unknown }).data).toEqual({ backups: { cronMaxKeep: { code: "validation_min_greater_equal_than_required", message: "Must be no less than 1.", params: { threshold: 1 } } } });
    const wrongType = await patch({ cronMaxKeep: "three" });
    expect(wrongType.body).toEqual({ data: {}, message: "An error occurred while loading the submitted data.", status: 400 });
    expect(await server.pb.settings.getAll()).toEqual(before);
  });

  test("a section that is not an object cannot be loaded (arrays too, at any depth); null changes nothing", async () => {
    const token = server.pb.authStore.token;
    const patch = (body: unknown) =>
      call(`${server.url}/api/settings`, { method: "PATCH", token, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await server.pb.settings.update({ backups: { cron: "0 4 * * *", cronMaxKeep: 5, s3: { region: "eu-west-1" } } });
    const before = await server.pb.settings.getAll();
    const unloadable = { data: {}, message: "An error occurred while loading the submitted data.", status: 400 };
    const refused: unknown[] = [
      { backups: [] },
      { backups: [{ cron: "@daily" }] },
      { backups: [[]] },
      { backups: "@daily" },
      { backups: 3 },
      { backups: true },
      { backups: { s3: [] } },
      { backups: { s3: [{ enabled: true }] } },
      { backups: { s3: "on" } },
      { backups: { s3: 1 } },
      { backups: { s3: { enabled: [] } } },
      { backups: { s3: { bucket: ["a"] } } },
      { backups: { s3: { bucket: { name: "a" } } } },
      { backups: { cron: [] } },
      { backups: { cron: {} } },
      { backups: { cronMaxKeep: [3] } },
      { backups: { cronMaxKeep: "3" } },
    ];
    for (const body of refused) {
      const res = await patch(body);
      expect({ body, answer: res.body }).toEqual({ body, answer: unloadable });
      expect(res.status).toBe(400);
    }
    // As PocketBase (Go's JSON decoder): null leaves the section or field as it was.
    const unchanged: unknown[] = [
      { backups: null },
      { backups: { s3: null } },
      { backups: { cron: null, cronMaxKeep: null } },
      { backups: { s3: { enabled: null, bucket: null, secret: null } } },
      {},
    ];
    for (const body of unchanged) {
      const res = await patch(body);
      expect({ body, status: res.status }).toEqual({ body, status: 200 });
      expect((res.body as { backups: unknown }).backups).toEqual(before.backups);
    }
    expect(await server.pb.settings.getAll()).toEqual(before);
    await server.pb.settings.update({ backups: { cron: "", cronMaxKeep: 3, s3: { region: "" } } });
  });

  test("test/s3 needs a known filesystem and an enabled S3; guests get 401", async () => {
    const token = server.pb.authStore.token;
    const post = (body: unknown, auth?: string) =>
      call(`${server.url}/api/settings/test/s3`, { method: "POST", ...(auth ? { token: auth } : {}), headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post({ filesystem: "other" }, token)).body).toEqual({ data: { filesystem: { code: "validation_in_invalid", message: "Must be a valid value." } }, message: "An error occurred while validating the submitted data.", status: 400 });
    expect((await post({ filesystem: "backups" }, token)).body).toEqual({ data: {}, message: "S3 storage filesystem is not enabled.", status: 400 });
    expect((await post({ filesystem: "backups" })).status).toBe(401);
    expect((await call(`${server.url}/api/settings`)).status).toBe(401);
    expect((await call(`${server.url}/api/settings`, { method: "PATCH", body: "{}" })).status).toBe(401);
  });
});

describe("tiered retention (beyond PocketBase)", () => {
  const token = () => server.pb.authStore.token;
  const preview = (query = "", auth: "superuser" | "guest" = "superuser") => call(`${server.url}/api/settings/backups/retention${query}`, auth === "superuser" ? { token: token() } : {});

  test("the tiers are saved and shown when set; 0 turns one off, and PocketBase's shape is unchanged without them", async () => {
    const before = (await server.pb.settings.getAll()).backups;
    expect(Object.keys(before).sort()).toEqual(Object.keys(defaults).sort());
    const saved = await server.pb.settings.update({ backups: { keepDaily: 7, keepWeekly: 4 } });
    expect(saved.backups).toEqual({ ...before, keepDaily: 7, keepWeekly: 4 });
    const off = await server.pb.settings.update({ backups: { keepDaily: 0, keepWeekly: 0 } });
    expect(off.backups).toEqual(before);
  });

  test("a negative or absurd tier is a validation error on its field, and nothing is saved", async () => {
    const res = await call(`${server.url}/api/settings`, { method: "PATCH", token: token(), headers: { "content-type": "application/json" }, body: JSON.stringify({ backups: { keepDaily: -1, keepMonthly: 1e6 } }) });
    expect(res.body).toEqual({
      data: {
        backups: {
          keepDaily: { code: "validation_min_greater_equal_than_required", message: "Must be no less than 0.", params: { threshold: 0 } },
          keepMonthly: { code: "validation_max_less_equal_than_required", message: "Must be no greater than 10000.", params: { threshold: 10000 } },
        },
      },
      message: "An error occurred while validating the submitted data.",
      status: 400,
    });
    expect(Object.keys((await server.pb.settings.getAll()).backups)).not.toContain("keepDaily");
  });

  test("the dry run names what a policy keeps (and why) and deletes, deleting nothing; manual backups are not its business", async () => {
    await server.pb.backups.create("manual.zip");
    for (const key of ["@auto_pb_backup_x_20260101060000.zip", "@auto_pb_backup_x_20260101180000.zip", "@auto_pb_backup_x_20260102060000.zip", "@auto_pb_backup_x_20260201060000.zip"]) {
      await server.ctx.backups.create(key, "scheduled");
    }
    const listed = async () => (await server.pb.backups.getFullList()).map((b) => b.key).sort();
    const before = await listed();
    const res = await preview("?cronMaxKeep=1&keepDaily=2&keepMonthly=2");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      keep: [
        { key: "@auto_pb_backup_x_20260201060000.zip", reasons: ["last", "daily", "monthly"] },
        { key: "@auto_pb_backup_x_20260102060000.zip", reasons: ["daily", "monthly"] },
      ],
      remove: ["@auto_pb_backup_x_20260101180000.zip", "@auto_pb_backup_x_20260101060000.zip"],
    });
    expect(await listed()).toEqual(before);
    // Without a query: the saved policy (PocketBase's cronMaxKeep of 3, by modification time).
    expect((await preview()).body).toMatchObject({ remove: ["@auto_pb_backup_x_20260101060000.zip"] });
    // Bad values answer as a PATCH would; guests get 401.
    expect((await preview("?keepDaily=-1")).status).toBe(400);
    expect((await preview("?keepDaily=7&extra=1")).status).toBe(400);
    expect((await preview("", "guest")).status).toBe(401);
    for (const key of before) await server.pb.backups.delete(key);
  });
});
