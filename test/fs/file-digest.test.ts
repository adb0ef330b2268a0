// The archive's SHA-256 on a thread of its own (src/fs/file-digest.ts), as a local restore proves its archive.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileSha256InWorker } from "../../src/fs/file-digest.ts";
import { tempDirsRemovedAfterEach } from "../support/temp-dirs.ts";

const tempDir = tempDirsRemovedAfterEach();

async function fileOf(bytes: Uint8Array) {
  const dir = await tempDir();
  const path = join(dir, "backup.zip");
  await writeFile(path, bytes);
  const { dev, ino } = await stat(path);
  return { dir, path, identity: { dev, ino } };
}

test("the digest of a file of several reads is the SHA-256 of all its bytes", async () => {
  const bytes = crypto.getRandomValues(new Uint8Array(65_536)).map((b, i) => b ^ i); // varied, not repeating reads
  const large = new Uint8Array(9 * 1024 * 1024 + 3);
  for (let at = 0; at < large.length; at += bytes.length) large.set(bytes.subarray(0, Math.min(bytes.length, large.length - at)), at);
  large[large.length - 1] = 7;
  const { path, identity } = await fileOf(large);
  expect(await fileSha256InWorker(path, identity).done).toBe(createHash("sha256").update(large).digest("hex"));
});

test("a file renamed over the path since it was opened is not hashed in its place", async () => {
  const { dir, path, identity } = await fileOf(new Uint8Array([1, 2, 3]));
  await writeFile(join(dir, "other.zip"), new Uint8Array([1, 2, 3]));
  await rename(join(dir, "other.zip"), path);
  await expect(fileSha256InWorker(path, identity).done).rejects.toThrow("The archive was replaced while it was read.");
});

test("a file that cannot be read: its cause, never its absolute path", async () => {
  const { dir, identity } = await fileOf(new Uint8Array([1]));
  const error = await fileSha256InWorker(join(dir, "missing.zip"), identity).done.catch((e: Error) => e);
  expect((error as Error).message).toBe("The archive could not be read for its checksum: (ENOENT).");
  expect((error as Error).message).not.toContain(dir);
});

test("a stopped digest ends its thread and rejects", async () => {
  const { path, identity } = await fileOf(new Uint8Array(1024));
  const digest = fileSha256InWorker(path, identity);
  digest.stop();
  await expect(digest.done).rejects.toThrow("The archive's checksum was stopped.");
});
