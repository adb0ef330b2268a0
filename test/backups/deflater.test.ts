import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { MANIFEST_PATH } from "../../src/archive/index.ts";
import { loadConfig } from "../../src/config.ts";
import { ISAL_LEVEL, openIsalDeflate } from "../../src/native/isal-deflate.ts";
import { sha256Hex, unzipAll } from "../support/archives.ts";
import { hashTree, seedDataDir } from "../support/data-dir.ts";
import { isalRequired } from "../support/isal.ts";
import { loggedField, makeTempDir, startTestServer } from "../support/test-server.ts";
import { checkZipIndependently } from "../support/zip-check.ts";

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
    return { deflater: loggedField(server, "backup created", key, "deflater"), files: await unzipAll(new Uint8Array(await readFile(path))) };
  } finally {
    await server.close();
  }
}

/** Each file's path and SHA-256 as unzipped, beside the manifest's list of them. */
function contents(files: Map<string, Uint8Array>) {
  const manifest = JSON.parse(new TextDecoder().decode(files.get(MANIFEST_PATH))) as { entries: { path: string; sha256: string }[] };
  const unzipped = [...files].filter(([path]) => path !== MANIFEST_PATH).map(([path, data]) => ({ path, sha256: sha256Hex(data) }));
  return { unzipped, listed: manifest.entries.map(({ path, sha256 }) => ({ path, sha256 })) };
}

/** The archive's uploads as `hashTree` lists the live `storage/`: path under it → SHA-256. */
const uploads = (list: { path: string; sha256: string }[]) =>
  Object.fromEntries(list.filter(({ path }) => path.startsWith("storage/")).map(({ path, sha256 }) => [path.slice("storage/".length), sha256]));

test("under BACKSTREAM_DEFLATER=libdeflate a backup is deflated by libdeflate: it passes unzip -t and holds what its manifest lists", async () => {
  const backup = await backUp({ BACKSTREAM_DEFLATER: "libdeflate" }, "libdeflate.zip");
  expect(backup.deflater).toBe("libdeflate");
  const withLibdeflate = contents(backup.files);
  expect(withLibdeflate.unzipped).toEqual(withLibdeflate.listed);
  expect(uploads(withLibdeflate.unzipped)).toEqual(await hashTree(join(dir, "storage")));
});

test.skipIf(!openIsalDeflate(ISAL_LEVEL) && !isalRequired)(
  "by default a backup is deflated by ISA-L where it loads: it passes unzip -t and holds what its manifest lists",
  async () => {
    const backup = await backUp({}, "isal.zip");
    expect(backup.deflater).toBe("isa-l");
    const withIsal = contents(backup.files);
    expect(withIsal.unzipped).toEqual(withIsal.listed);
    expect(uploads(withIsal.unzipped)).toEqual(await hashTree(join(dir, "storage")));
    expect(backup.files.get("data.db")!.length).toBeGreaterThan(100_000);
  },
);

test("BACKSTREAM_DEFLATER takes isa-l or libdeflate, and names itself when it is anything else", () => {
  expect(loadConfig({}, {}).deflater).toBe("isa-l");
  expect(loadConfig({}, { BACKSTREAM_DEFLATER: "libdeflate" }).deflater).toBe("libdeflate");
  expect(() => loadConfig({}, { BACKSTREAM_DEFLATER: "zstd" })).toThrow("BACKSTREAM_DEFLATER must be isa-l or libdeflate");
});
