import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { runJobInWorker } from "../../src/jobs/run-job.ts";
import { seedDataDir } from "../support/data-dir.ts";
import { makeTempDir } from "../support/test-server.ts";

/** Every thread of this process: its id, its name and its nice value, as Linux reports them. */
function threads(): { tid: number; name: string; nice: number }[] {
  return readdirSync("/proc/self/task").flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const nice = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      return [{ tid: Number(tid), name: readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim(), nice }];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
}

// The job's threads yield the CPU to the HTTP thread (bench/README.md: health p99 32 -> 2-6 ms). The
// lowering swallows its own failures by design (other systems), so this is what notices when it stops working.
test.if(process.platform === "linux")("a job's worker thread and the runtime's pool run at a lower priority than the server's thread", async () => {
  const dir = await makeTempDir();
  try {
    await seedDataDir(dir, { rows: 200 });
    const before = threads();
    const mainNice = before.find((t) => t.tid === process.pid)!.nice;
    let during: ReturnType<typeof threads> | undefined;
    await runJobInWorker(
      { kind: "create", dataDir: dir, store: { kind: "local", dir: join(dir, "backups") }, key: "a.zip", producer: "test", level: 2 },
      { onProgress: () => void (during ??= threads()) },
    );
    const lowered = Math.min(19, mainNice + 10);
    expect(during!.find((t) => t.tid === process.pid)!.nice).toBe(mainNice);
    // Threads of other tests in this process are left out: only those the job started.
    const workers = during!.filter((t) => /worker/i.test(t.name) && !/JIT/.test(t.name) && !before.some((b) => b.tid === t.tid));
    expect(workers.length).toBeGreaterThan(0);
    for (const worker of workers) expect(worker).toMatchObject({ nice: lowered });
    const pool = during!.filter((t) => /pool/i.test(t.name));
    expect(pool.length).toBeGreaterThan(0);
    for (const thread of pool) expect(thread).toMatchObject({ nice: lowered });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
