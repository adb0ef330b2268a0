import { afterAll, expect, test } from "bun:test";
import { statfs } from "node:fs/promises";
import { rm } from "node:fs/promises";
import { DEFAULT_RESTORE_RESERVE_BYTES, freeSpaceProblem } from "../../src/fs/free-space.ts";
import { makeTempDir } from "../support/test-server.ts";

const dir = await makeTempDir();
afterAll(() => rm(dir, { recursive: true, force: true }));

test("room for the data and the reserve: no problem", async () => {
  expect(await freeSpaceProblem(dir, 1024, DEFAULT_RESTORE_RESERVE_BYTES)).toBeUndefined();
});

test("more than the disk has free: says how much is needed, kept and free, in MB, without paths", async () => {
  const { bavail, bsize } = await statfs(dir);
  const free = Number(bavail) * Number(bsize);
  const problem = await freeSpaceProblem(dir, free, 64 * 1024 * 1024);
  expect(problem).toStartWith(`Not enough free disk space to restore this backup: it needs ${Math.ceil(free / 1024 / 1024)} MB, and 64 MB are kept free`);
  expect(problem).toMatch(/but the disk has \d+ MB free\.$/);
  expect(problem).not.toContain(dir);
  // The reserve alone can be what does not fit.
  expect(await freeSpaceProblem(dir, 0, free + 1)).toBeDefined();
});
