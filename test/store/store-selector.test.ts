import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_BACKUPS_SETTINGS } from "../../src/settings/settings-store.ts";
import { StoreSelector } from "../../src/store/store-selector.ts";
import { freePort } from "../support/s3rver.ts";
import { makeTempDir } from "../support/test-server.ts";

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir("backstream-selector-");
  await mkdir(join(dir, ".tmp"), { recursive: true });
  await writeFile(join(dir, ".tmp", "left-by-a-crash"), "partial archive");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("cleanup clears the local folder's leftovers, and a bucket it cannot reach is only warned about", async () => {
  const stores = new StoreSelector(dir, { retry: { attempts: 1, baseDelayMs: 1 } });
  const endpoint = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  stores.use({ ...DEFAULT_BACKUPS_SETTINGS, s3: { ...DEFAULT_BACKUPS_SETTINGS.s3, enabled: true, endpoint, bucket: "backups", region: "us-east-1", forcePathStyle: true } });
  const warnings: Error[] = [];
  await stores.cleanup((error) => warnings.push(error));
  expect(existsSync(join(dir, ".tmp", "left-by-a-crash"))).toBe(false);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]!.message).not.toContain(dir);
});

test("with the local folder in use, cleanup clears it and warns about nothing", async () => {
  const stores = new StoreSelector(dir);
  const warnings: Error[] = [];
  await stores.cleanup((error) => warnings.push(error));
  expect(existsSync(join(dir, ".tmp", "left-by-a-crash"))).toBe(false);
  expect(warnings).toEqual([]);
});
