import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cp, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import PocketBase from "pocketbase";
import { hashTree, readPosts, seedDataDir } from "../support/data-dir.ts";
import { spawnServer } from "../support/server-process.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, makeTempDir, startTestServer } from "../support/test-server.ts";

/**
 * SIGKILL during a restore, at each named step, then a restart: the data must be wholly the old or wholly
 * the new, and the server must serve. The restore pauses at a step (BACKSTREAM_TEST_PAUSE_AT) and the test
 * kills the process there.
 */

let template: string;
let oldState: Awaited<ReturnType<typeof stateOf>>;
let newState: Awaited<ReturnType<typeof stateOf>>;

const stateOf = async (dir: string) => ({
  posts: await readPosts(join(dir, "data.db")),
  files: await hashTree(join(dir, "storage")),
});

beforeAll(async () => {
  // A data directory whose backup ("new") differs from its live data ("old") in rows and files.
  template = await makeTempDir();
  await seedDataDir(template, { tag: "new", rows: 300, files: 6 });
  const server = await startTestServer({ dir: template });
  await server.pb.backups.create("target.zip");
  await server.close();
  newState = await stateOf(template);
  await rm(join(template, "data.db"));
  await rm(join(template, "storage"), { recursive: true });
  await seedDataDir(template, { tag: "old", rows: 120, files: 3 });
  oldState = await stateOf(template);
  expect(oldState).not.toEqual(newState);
});
afterAll(() => rm(template, { recursive: true, force: true }));

const cases: [step: string, expected: "old" | "new"][] = [
  ["extracting", "old"],
  ["extracted", "old"],
  ["journal-written", "new"],
  ["old-moved", "new"],
  ["new-moved", "new"],
  ["staging-removed", "new"],
];

/** What the restarted server says recovery did: the words must match where the data stands. */
const recoveryLog = {
  old: "an interrupted restore was found and discarded (rolled back): the data is as it was before the restore",
  new: "an interrupted restore was found and finished (rolled forward): the restored data is in place",
};

describe("a restore killed with SIGKILL", () => {
  for (const [step, expected] of cases) {
    test(`at "${step}" leaves the ${expected} data whole after a restart`, async () => {
      const dir = await makeTempDir();
      try {
        await cp(template, dir, { recursive: true });
        const server = await spawnServer(dir, { BACKSTREAM_TEST_PAUSE_AT: step, BACKSTREAM_RESTORE_DELAY_MS: "0" });
        try {
          const pb = new PocketBase(server.url);
          await pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
          await pb.backups.restore("target.zip");
          await server.waitForOutput(new RegExp(`restore paused at ${step}`));
        } finally {
          await server.kill("SIGKILL");
        }
        const restarted = await startTestServer({ dir });
        try {
          expect(await stateOf(dir)).toEqual(expected === "old" ? oldState : newState);
          const said = restarted.logs.filter((line) => line.includes("interrupted restore"));
          expect(said.length).toBe(1);
          expect(said[0]).toContain(recoveryLog[expected]);
          expect((await restarted.pb.backups.getFullList()).map((b) => b.key)).toEqual(["target.zip"]);
          const root = await readdir(dir);
          expect(root).not.toContain(".pb_restore_staging");
          expect(root).not.toContain(".pb_restore_journal.json");
        } finally {
          await restarted.close();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
