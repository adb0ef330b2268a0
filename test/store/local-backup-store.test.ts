import { afterAll, describe } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { LocalBackupStore } from "../../src/store/local-backup-store.ts";
import { runStoreContract } from "../support/store-contract.ts";
import { makeTempDir } from "../support/test-server.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("LocalBackupStore", () => {
  runStoreContract(async () => {
    const dir = await makeTempDir("local-store-");
    dirs.push(dir);
    return new LocalBackupStore(join(dir, "backups"));
  });
});
