import { describe, expect, test } from "bun:test";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { recoverRestore, swapInRestoredData, type SwapStep } from "../../src/backups/restore-swap.ts";
import { hashTree, readPosts, seedDataDir } from "../support/data-dir.ts";
import { tempDirsRemovedAfterEach } from "../support/temp-dirs.ts";
import { startTestServer } from "../support/test-server.ts";

const tempDir = tempDirsRemovedAfterEach();

/** A data directory with old data at the root and new data staged, as the restore leaves it before the swap. */
async function stagedDir() {
  const dir = await tempDir();
  await writeFile(join(dir, "data.db"), "old db");
  await writeFile(join(dir, "data.db-wal"), "old wal");
  await mkdir(join(dir, "storage", "a"), { recursive: true });
  await writeFile(join(dir, "storage", "a", "old.txt"), "old file");
  await writeFile(join(dir, "only-old.txt"), "gone after restore");
  await mkdir(join(dir, "backups"));
  await writeFile(join(dir, "backups", "kept.zip"), "backup");
  await writeFile(join(dir, ".pb_secret"), "secret");
  const staging = join(dir, ".pb_restore_staging");
  await mkdir(join(staging, "storage", "b"), { recursive: true });
  await writeFile(join(staging, "data.db"), "new db");
  await writeFile(join(staging, "storage", "b", "new.txt"), "new file");
  return dir;
}

const expectedNew = { "data.db": expectHash("new db"), "storage/b/new.txt": expectHash("new file") };
function expectHash(text: string) {
  return new Bun.CryptoHasher("sha256").update(text).digest("hex");
}
const dataOnly = (rel: string) => rel === "backups" || rel.startsWith(".pb_");

describe("the journaled swap", () => {
  test("moves every old root entry out and every new one in; excluded entries stay", async () => {
    const dir = await stagedDir();
    await swapInRestoredData(dir);
    expect(await hashTree(dir, dataOnly)).toEqual(expectedNew);
    expect(await readFile(join(dir, "backups", "kept.zip"), "utf8")).toBe("backup");
    expect(await readFile(join(dir, ".pb_secret"), "utf8")).toBe("secret");
    const [trash] = await readdir(join(dir, ".pb_temp_to_delete"));
    expect((await readdir(join(dir, ".pb_temp_to_delete", trash!))).sort()).toEqual(["data.db", "data.db-wal", "only-old.txt", "storage"]);
    expect(await recoverRestore(dir)).toBe("clean");
    expect(await readdir(dir)).not.toContain(".pb_temp_to_delete");
  });

  for (const step of ["journal-written", "old-moved", "new-moved", "staging-removed"] as const) {
    test(`interrupted after "${step}", the next start rolls forward to the new data`, async () => {
      const dir = await stagedDir();
      const crash = new Error("simulated crash");
      await expect(swapInRestoredData(dir, async (s) => {
        if (s === step) throw crash;
      })).rejects.toBe(crash);
      expect(await recoverRestore(dir)).toBe("rolled-forward");
      expect(await hashTree(dir, dataOnly)).toEqual(expectedNew);
      // replaying again is harmless
      expect(await recoverRestore(dir)).toBe("clean");
      expect(await hashTree(dir, dataOnly)).toEqual(expectedNew);
    });
  }

  test("staged data without a journal is discarded: the old data stays", async () => {
    const dir = await stagedDir();
    const before = await hashTree(dir, dataOnly);
    expect(await recoverRestore(dir)).toBe("rolled-back");
    expect(await hashTree(dir, dataOnly)).toEqual(before);
    expect(await readdir(dir)).not.toContain(".pb_restore_staging");
  });

  test("the staging folder goes before the journal: a crash between the two is a finished restore, not a rolled-back one", async () => {
    const dir = await stagedDir();
    const crash = new Error("simulated crash");
    await expect(swapInRestoredData(dir, async (s) => {
      if (s === "staging-removed") throw crash;
    })).rejects.toBe(crash);
    const root = await readdir(dir);
    expect(root).not.toContain(".pb_restore_staging");
    expect(root).toContain(".pb_restore_journal.json");
    expect(await recoverRestore(dir)).toBe("rolled-forward");
    expect(await hashTree(dir, dataOnly)).toEqual(expectedNew);
  });

  test("an unreadable journal stops the start instead of guessing", async () => {
    const dir = await stagedDir();
    await writeFile(join(dir, ".pb_restore_journal.json"), "{broken");
    await expect(recoverRestore(dir)).rejects.toThrow("The restore journal is unreadable");
  });
});

/** A real data directory (old rows at the root, new rows staged), interrupted at `step` of the swap. */
async function interruptedRealSwap(step: SwapStep | "before-journal") {
  const dir = await tempDir();
  await seedDataDir(dir, { tag: "old", rows: 20, files: 2 });
  await mkdir(join(dir, ".pb_restore_staging"));
  await seedDataDir(join(dir, ".pb_restore_staging"), { tag: "new", rows: 30, files: 3 });
  const oldPosts = await readPosts(join(dir, "data.db"));
  const newPosts = await readPosts(join(dir, ".pb_restore_staging", "data.db"));
  if (step !== "before-journal") {
    const crash = new Error("simulated crash");
    await expect(swapInRestoredData(dir, async (s) => {
      if (s === step) throw crash;
    })).rejects.toBe(crash);
  }
  return { dir, oldPosts, newPosts };
}

const ROLLED_FORWARD = "an interrupted restore was found and finished (rolled forward): the restored data is in place";
const ROLLED_BACK = "an interrupted restore was found and discarded (rolled back): the data is as it was before the restore";

describe("the start-up log says what recovery did", () => {
  for (const step of ["journal-written", "new-moved", "staging-removed"] as const) {
    test(`after a crash at "${step}": finished (rolled forward), the new data is served`, async () => {
      const { dir, newPosts } = await interruptedRealSwap(step);
      const server = await startTestServer({ dir });
      try {
        const recovery = server.logs.filter((line) => line.includes("interrupted restore"));
        expect(recovery.length).toBe(1);
        expect(recovery[0]).toContain(ROLLED_FORWARD);
        expect(await readPosts(join(dir, "data.db"))).toEqual(newPosts);
      } finally {
        await server.close();
      }
    });
  }

  test("after a crash before the journal: discarded (rolled back), the old data is served", async () => {
    const { dir, oldPosts } = await interruptedRealSwap("before-journal");
    const server = await startTestServer({ dir });
    try {
      const recovery = server.logs.filter((line) => line.includes("interrupted restore"));
      expect(recovery.length).toBe(1);
      expect(recovery[0]).toContain(ROLLED_BACK);
      expect(await readPosts(join(dir, "data.db"))).toEqual(oldPosts);
    } finally {
      await server.close();
    }
  });

  test("a clean start logs nothing about restores", async () => {
    const { dir } = await interruptedRealSwap("before-journal");
    await recoverRestore(dir);
    const server = await startTestServer({ dir });
    try {
      expect(server.logs.filter((line) => line.includes("interrupted restore"))).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
