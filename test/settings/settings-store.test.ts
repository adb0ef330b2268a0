import { afterEach, beforeEach, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseHandle } from "../../src/db/database-handle.ts";
import { DEFAULT_BACKUPS_SETTINGS, readSavedBackupsSettings, SettingsStore } from "../../src/settings/settings-store.ts";
import { makeTempDir } from "../support/test-server.ts";

let dir: string;
let db: DatabaseHandle;
beforeEach(async () => {
  dir = await makeTempDir("backstream-settings-");
  db = new DatabaseHandle(join(dir, "data.db"));
  await db.open();
});
afterEach(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

test("the settings live in the settings row of _params, other sections kept, the secret kept when not sent", async () => {
  const settings = new SettingsStore(db);
  expect(await settings.get()).toEqual({ cron: "", cronMaxKeep: 3 });
  await db.execute({
    sql: "INSERT INTO _params (id, value, updated) VALUES ('settings', ?, '')",
    args: [JSON.stringify({ meta: { appName: "X" }, backups: { cron: "", cronMaxKeep: 3, s3: { enabled: false, bucket: "b", secret: "s3cret" } } })],
  });
  const seen: unknown[] = [];
  settings.onChange((s) => seen.push(s));
  await settings.update({ cron: "@daily", cronMaxKeep: 5, s3: { region: "eu" } });
  expect(seen).toEqual([{ cron: "@daily", cronMaxKeep: 5 }]);
  expect(await settings.get()).toEqual({ cron: "@daily", cronMaxKeep: 5 });
  const row = await db.execute("SELECT value FROM _params WHERE id = 'settings'");
  expect(JSON.parse(String(row.rows[0]![0]))).toEqual({
    meta: { appName: "X" },
    backups: { cron: "@daily", cronMaxKeep: 5, s3: { enabled: false, bucket: "b", region: "eu", endpoint: "", accessKey: "", secret: "s3cret", forcePathStyle: false } },
  });
});

test("readSavedBackupsSettings (the CLI's view) reads what was saved and changes nothing: defaults without a file or a _params table", async () => {
  expect(await readSavedBackupsSettings(join(dir, "missing.db"))).toEqual(DEFAULT_BACKUPS_SETTINGS);
  expect(existsSync(join(dir, "missing.db"))).toBe(false);

  const plain = createClient({ url: `file:${join(dir, "app.db")}` }); // an app's database without our tables
  await plain.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY)");
  plain.close();
  const before = await readFile(join(dir, "app.db"));
  expect(await readSavedBackupsSettings(join(dir, "app.db"))).toEqual(DEFAULT_BACKUPS_SETTINGS);
  expect(await readFile(join(dir, "app.db"))).toEqual(before);

  await new SettingsStore(db).update({ cronMaxKeep: 7, s3: { enabled: true, bucket: "b", secret: "s3cret" } });
  expect(await readSavedBackupsSettings(join(dir, "data.db"))).toMatchObject({ cronMaxKeep: 7, s3: { enabled: true, bucket: "b", secret: "s3cret" } });
});
