import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { cp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import PocketBase from "pocketbase";
import { seedDataDir } from "../support/data-dir.ts";
import { spawnServer } from "../support/server-process.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer } from "../support/test-server.ts";

/**
 * SIGKILL during a verify, at each named point, then a restart: nothing of the verify may be left (its scratch
 * folder lives in the data directory's `.pb_temp_to_delete/`, which every start empties; nothing goes to the
 * system temp folder), and the next verify succeeds. The verify stops at a point (BACKSTREAM_TEST_PAUSE_AT) and
 * the test kills the process there, once the scratch folder shows what that point should have made.
 */

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const MiB = 1024 * 1024;
let template: string;
let dbSize: number;

beforeAll(async () => {
  // data.db of some size (so its copy is in progress for a while), and uploads after it in the archive.
  template = await makeTempDir();
  await seedDataDir(template, { rows: 200, files: 4 });
  const db = createClient({ url: `file:${join(template, "data.db")}` });
  await db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)");
  for (let i = 0; i < 16; i++) await db.execute({ sql: "INSERT INTO blobs (data) VALUES (randomblob(?))", args: [MiB] });
  db.close();
  const server = await startTestServer({ dir: template });
  await server.pb.backups.create("sizeable.zip");
  await server.close();
  dbSize = (await stat(join(template, "data.db"))).size;
  expect(dbSize).toBeGreaterThan(16 * MiB);
});
afterAll(() => rm(template, { recursive: true, force: true }));

/** The verify's scratch folders in a data directory, with the size of the data.db copy in each. */
async function scratch(dir: string): Promise<{ name: string; dbBytes: number | undefined }[]> {
  const trash = join(dir, ".pb_temp_to_delete");
  const names = (await readdir(trash).catch(() => [] as string[])).filter((n) => n.startsWith("verify-"));
  return Promise.all(names.map(async (name) => ({ name, dbBytes: (await stat(join(trash, name, "data.db")).catch(() => undefined))?.size })));
}

/** What the system temp folder holds beside what was there before (the test's own data directory aside). */
const newInTmp = async (before: Set<string>) => (await readdir(tmpdir())).filter((n) => !before.has(n));

const cases: [step: string, left: (dbBytes: number | undefined) => boolean, what: string][] = [
  ["verify-copying", (bytes) => bytes !== undefined && bytes > 0 && bytes < dbSize, "part of data.db's copy"],
  ["verify-entries", (bytes) => bytes === dbSize, "data.db's whole copy, the entries after it being checked"],
  ["verify-quick-check", (bytes) => bytes === dbSize, "the copy, about to be checked with PRAGMA quick_check"],
];

describe("a verify killed with SIGKILL", () => {
  for (const [step, left, what] of cases) {
    for (const restart of ["server", "cli"] as const) {
      test(`at "${step}" (${what}) leaves nothing behind after a ${restart} start, and the next verify succeeds`, async () => {
        const dir = await makeTempDir();
        try {
          await cp(template, dir, { recursive: true });
          const tmpBefore = new Set(await readdir(tmpdir()));
          const server = await spawnServer(dir, { BACKSTREAM_TEST_PAUSE_AT: step });
          try {
            const pb = new PocketBase(server.url);
            await pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
            const verify = call(`${server.url}/api/backups/sizeable.zip/verify`, { method: "POST", token: pb.authStore.token }).catch(() => undefined);
            await server.waitForOutput(new RegExp(`verify paused at ${step}`));
            const jobs = await call(`${server.url}/api/jobs`, { token: pb.authStore.token });
            expect((jobs.body as { active: { kind: string; phase: string } }).active).toMatchObject({ kind: "verify", phase: "paused" });
            // The kill comes where the verify has made its files: in the data directory, none in the system temp folder.
            const made = await scratch(dir);
            expect(made.length).toBe(1);
            expect({ step, dbBytes: made[0]!.dbBytes, expected: left(made[0]!.dbBytes) }).toEqual({ step, dbBytes: made[0]!.dbBytes, expected: true });
            expect(await newInTmp(tmpBefore)).toEqual([]);
            await server.kill("SIGKILL");
            await verify;
          } finally {
            await server.kill("SIGKILL");
          }
          expect((await scratch(dir)).length).toBe(1); // the kill left it; the next start must remove it

          if (restart === "server") {
            const restarted = await startTestServer({ dir });
            try {
              expect(await scratch(dir)).toEqual([]);
              const again = await call(`${restarted.url}/api/backups/sizeable.zip/verify`, { method: "POST", token: restarted.pb.authStore.token });
              expect(again.status).toBe(200);
              expect(again.body).toMatchObject({ ok: true, problems: [] });
            } finally {
              await restarted.close();
            }
          } else {
            const proc = Bun.spawn([process.execPath, CLI, "backup", "verify", "sizeable.zip", "--json", `--dir=${dir}`], { stdout: "pipe", stderr: "pipe" });
            const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
            expect({ code, stderr }).toMatchObject({ code: 0 });
            expect(JSON.parse(stdout)).toMatchObject({ ok: true, problems: [] });
          }
          expect(await scratch(dir)).toEqual([]);
          expect(await newInTmp(tmpBefore)).toEqual([]);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  }
});
