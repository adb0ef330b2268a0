// A restore's extraction (the extract job, run inline on this thread, over a real local store and archive) flushes
// its large files as it writes them: the write-behind `fileSink` offers is what the restore asks for.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runJobInline } from "../../src/jobs/run-job.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { countingDatasyncs } from "../support/datasync-count.ts";
import { tempDirsRemovedAfterEach } from "../support/temp-dirs.ts";

const tempDir = tempDirsRemovedAfterEach();
const MiB = 1024 * 1024;

test("a restore flushes a 40 MiB upload every 16 MiB while extracting it, and stages it whole", async () => {
  const dir = await tempDir();
  const data = join(dir, "data");
  await mkdir(join(data, "storage"), { recursive: true });
  await seedDataDir(data, { files: 2 });
  const video = new Uint8Array(40 * MiB);
  for (let at = 0; at < video.length; at += 65536) crypto.getRandomValues(video.subarray(at, at + 65536));
  await writeFile(join(data, "storage", "video.mp4"), video);
  const store = { kind: "local" as const, dir: join(dir, "backups") };
  await runJobInline({ kind: "create", dataDir: data, store, key: "b.zip", producer: "test", level: 1 });
  const staging = join(dir, "staging");
  await mkdir(staging);
  const datasyncs = await countingDatasyncs(dir, undefined, async () => {
    await runJobInline({ kind: "extract", store, key: "b.zip", stagingDir: staging });
  });
  expect(datasyncs).toBe(2);
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
  expect(sha256(await readFile(join(staging, "storage", "video.mp4")))).toBe(sha256(video));
});
