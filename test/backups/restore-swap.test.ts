import { describe, expect, test } from "bun:test";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { recoverRestore, swapInRestoredData } from "../../src/backups/restore-swap.ts";
import { hashTree } from "../support/data-dir.ts";
import { tempDirsRemovedAfterEach } from "../support/temp-dirs.ts";

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

  for (const step of ["journal-written", "old-moved", "new-moved"] as const) {
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

  test("an unreadable journal stops the start instead of guessing", async () => {
    const dir = await stagedDir();
    await writeFile(join(dir, ".pb_restore_journal.json"), "{broken");
    await expect(recoverRestore(dir)).rejects.toThrow("The restore journal is unreadable");
  });
});
