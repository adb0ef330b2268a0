import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import PocketBase from "pocketbase";
import { spawnServer } from "./support/server-process.ts";
import { makeTempDir } from "./support/test-server.ts";

const CLI = resolve(import.meta.dir, "../src/cli.ts");
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, PB_SUPERUSER_EMAIL: "", PB_SUPERUSER_PASSWORD: "" } });

describe("serve and superuser upsert", () => {
  test("a first start creates a superuser with a random password, printed once; superuser upsert changes it", async () => {
    const dir = await makeTempDir();
    try {
      const first = await spawnServer(dir, { PB_SUPERUSER_EMAIL: "", PB_SUPERUSER_PASSWORD: "" });
      let password: string;
      try {
        password = /password: (\S+)/.exec(first.output())![1]!;
        const pb = new PocketBase(first.url);
        await pb.collection("_superusers").authWithPassword("admin@example.com", password);
        expect(pb.authStore.isSuperuser).toBe(true);
      } finally {
        await first.kill("SIGTERM");
      }
      const second = await spawnServer(dir, { PB_SUPERUSER_EMAIL: "", PB_SUPERUSER_PASSWORD: "" });
      await second.kill("SIGTERM");
      expect(second.output()).not.toContain("password:");

      const upsert = run("superuser", "upsert", "ops@example.com", "a-long-password", `--dir=${dir}`);
      expect(upsert.stdout).toContain("Superuser ops@example.com created.");
      expect(upsert.status).toBe(0);
      const third = await spawnServer(dir, { PB_SUPERUSER_EMAIL: "", PB_SUPERUSER_PASSWORD: "" });
      try {
        await new PocketBase(third.url).collection("_superusers").authWithPassword("ops@example.com", "a-long-password");
      } finally {
        await third.kill("SIGTERM");
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("bad arguments exit 2 with the usage", () => {
    const result = run("nonsense");
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("Usage:");
    expect(run("superuser", "upsert", "not-an-email", "x").status).toBe(2);
  });

  test("a bad --http is refused with a message naming it", () => {
    const result = run("serve", "--http=nope");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("--http must look like HOST:PORT");
  });
});
