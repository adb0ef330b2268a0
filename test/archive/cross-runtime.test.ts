import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { makeTempDir } from "../support/test-server.ts";
import { treeDigest } from "../support/archive-files.ts";
import { checkZipIndependently } from "../support/zip-check.ts";

const ROOT = resolve(import.meta.dir, "../..");
const CLI = join(ROOT, "test/deno/archive-cli.ts");
const DENO = join(ROOT, "node_modules/.bin/deno");

const underDeno = (...args: string[]) =>
  JSON.parse(execFileSync(DENO, ["run", "--allow-read", "--allow-write", "--allow-env", CLI, ...args], { cwd: ROOT, encoding: "utf8" }));
const underBun = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8" }));

let work: string;
let fixture: string;
beforeAll(async () => {
  work = await makeTempDir("cross-runtime-");
  fixture = join(work, "data");
  await mkdir(join(fixture, "storage", "a"), { recursive: true });
  await writeFile(join(fixture, "data.db"), "SQLite format 3\u0000".padEnd(500_000, "rows and pages "));
  await writeFile(join(fixture, "storage", "a", "notes.txt"), "text ".repeat(20_000));
  await writeFile(join(fixture, "storage", "a", "photo.jpg"), crypto.getRandomValues(new Uint8Array(40_000)));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe("archives cross runtimes", () => {
  test("written under Deno, read and verified under Bun", async () => {
    const written = underDeno("write", fixture, join(work, "deno.zip"));
    expect(written.manifest.producer).toBe("cross-runtime-deno");
    const report = underBun("verify", join(work, "deno.zip"), join(work, "from-deno"));
    expect(report.manifest).toEqual(written.manifest);
    expect(await treeDigest(join(work, "from-deno"))).toEqual(await treeDigest(fixture));
    expect(checkZipIndependently(join(work, "deno.zip"))).toContain("No errors detected");
  });

  test("written under Bun, read and verified under Deno", async () => {
    const written = underBun("write", fixture, join(work, "bun.zip"));
    expect(written.manifest.producer).toBe("cross-runtime-bun");
    const report = underDeno("verify", join(work, "bun.zip"), join(work, "from-bun"));
    expect(report.manifest).toEqual(written.manifest);
    expect(await treeDigest(join(work, "from-bun"))).toEqual(await treeDigest(fixture));
  });
});
