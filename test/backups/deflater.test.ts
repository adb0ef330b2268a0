import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { MANIFEST_PATH } from "../../src/archive/manifest.ts";
import { loadConfig } from "../../src/config.ts";
import { ISAL_LEVEL, openIsalDeflate } from "../../src/native/isal-deflate.ts";
import { unzipAll } from "../support/archives.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { isalRequired } from "../support/isal.ts";
import { makeTempDir, startTestServer, type TestServer } from "../support/test-server.ts";
import { checkZipIndependently } from "../support/zip-check.ts";

/** The `deflater` the server logged for the backup `key`. */
function deflaterOf(server: TestServer, key: string): string | undefined {
  const line = server.logs.findLast((l) => l.includes("backup created") && l.includes(key));
  return /deflater[":= ]+"?([a-z-]+)/.exec(line ?? "")?.[1];
}

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
  await seedDataDir(dir, { rows: 3000, files: 6 });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A backup of `dir` through a server started with `env`: what it logged as its deflater, and the archive. */
async function backUp(env: Record<string, string>, key: string) {
  const server = await startTestServer({ dir, env });
  try {
    await server.pb.backups.create(key);
    const path = join(dir, "backups", key);
    checkZipIndependently(path);
    return { deflater: deflaterOf(server, key), files: await unzipAll(new Uint8Array(await readFile(path))) };
  } finally {
    await server.close();
  }
}

const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

/**
 * Each file's path and SHA-256 as unzipped, beside the manifest's list of them. The two archives' data.db differ:
 * each server writes to it as it starts.
 */
function contents(files: Map<string, Uint8Array>) {
  const manifest = JSON.parse(new TextDecoder().decode(files.get(MANIFEST_PATH))) as { entries: { path: string; sha256: string }[] };
  const unzipped = [...files].filter(([path]) => path !== MANIFEST_PATH).map(([path, data]) => ({ path, sha256: sha256(data) }));
  return { unzipped, listed: manifest.entries.map(({ path, sha256 }) => ({ path, sha256 })) };
}

test.skipIf(!openIsalDeflate(ISAL_LEVEL) && !isalRequired)(
  "a backup deflates with ISA-L where it loads, with libdeflate under BACKSTREAM_DEFLATER=libdeflate: both archives pass unzip -t and hold the same files",
  async () => {
    const isal = await backUp({}, "isal.zip");
    const libdeflate = await backUp({ BACKSTREAM_DEFLATER: "libdeflate" }, "libdeflate.zip");
    expect(isal.deflater).toBe("isa-l");
    expect(libdeflate.deflater).toBe("libdeflate");
    const [withIsal, withLibdeflate] = [contents(isal.files), contents(libdeflate.files)];
    expect(withIsal.unzipped).toEqual(withIsal.listed);
    expect(withLibdeflate.unzipped).toEqual(withLibdeflate.listed);
    const uploads = (list: { path: string }[]) => list.filter(({ path }) => path.startsWith("storage/"));
    expect(uploads(withIsal.unzipped)).toEqual(uploads(withLibdeflate.unzipped));
    expect(isal.files.get("data.db")!.length).toBeGreaterThan(100_000);
  },
);

test("BACKSTREAM_DEFLATER takes isa-l or libdeflate, and names itself when it is anything else", () => {
  expect(loadConfig({}, {}).deflater).toBe("isa-l");
  expect(loadConfig({}, { BACKSTREAM_DEFLATER: "libdeflate" }).deflater).toBe("libdeflate");
  expect(() => loadConfig({}, { BACKSTREAM_DEFLATER: "zstd" })).toThrow("BACKSTREAM_DEFLATER must be isa-l or libdeflate");
});
