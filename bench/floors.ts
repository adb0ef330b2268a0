// The machine's floors, measured once at bench start, so each time can also be read as a multiple of what the
// disk and the CPU allow: durable write speed (256 MB written and fdatasync'ed, 3 times), small durable files per
// second (8 KB each, fsync'ed), read speed (cold where the page cache can be dropped), and per data shape the
// two-core throughput of deflate (the server's ISA-L level 1 where it loads, and node:zlib level 1), inflate
// (node:zlib) and SHA-256 over a sample of the shape's bytes.
import { closeSync, fdatasyncSync, fsyncSync, openSync, readdirSync, readSync, statSync, writeFileSync, writeSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { noise } from "./shapes/common.ts";

const MB = 1024 * 1024;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export interface DiskFloors {
  durableWriteMBps: number[];
  durableWriteMedianMBps: number;
  fileMb: number;
  smallFilesPerSecond: number;
  readMBps: number;
  readCold: boolean;
}

export interface CpuFloors {
  sampleMb: number;
  /** The deflater the backup floor uses: the server's ISA-L level 1 where it loads, else node:zlib level 1. */
  deflater: "isa-l" | "zlib-1";
  deflateMBps: number;
  deflateRatio: number;
  zlib1MBps: number;
  zlib1Ratio: number;
  inflateMBps: number;
  sha256MBps: number;
  workers: number;
}

/** Durable write, per-file and read floors in `dir` (on the file system the bench works on). */
export async function measureDiskFloors(dir: string, log: (line: string) => void, fileMb = 256): Promise<DiskFloors> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, "floor.bin");
  const chunk = noise(8 * MB, 12345);
  const durableWriteMBps: number[] = [];
  for (let i = 0; i < 3; i++) {
    await rm(path, { force: true });
    Bun.spawnSync(["sync"]);
    const started = performance.now();
    const fd = openSync(path, "w");
    for (let written = 0; written < fileMb * MB; written += chunk.length) writeSync(fd, chunk);
    fdatasyncSync(fd);
    closeSync(fd);
    durableWriteMBps.push(round(fileMb / ((performance.now() - started) / 1000)));
  }
  const small = join(dir, "floor-small");
  await mkdir(small, { recursive: true });
  const eight = chunk.subarray(0, 8192);
  Bun.spawnSync(["sync"]);
  let started = performance.now();
  for (let i = 0; i < 1000; i++) {
    const fd = openSync(join(small, `f${i}`), "w");
    writeSync(fd, eight);
    fsyncSync(fd);
    closeSync(fd);
  }
  const smallFilesPerSecond = Math.round(1000 / ((performance.now() - started) / 1000));
  await rm(small, { recursive: true, force: true });
  Bun.spawnSync(["sync"]);
  let readCold = false;
  try {
    writeFileSync("/proc/sys/vm/drop_caches", "1");
    readCold = true;
  } catch {
    log("floors: cannot drop the page cache (not root?): the read floor is a warm read");
  }
  const buffer = new Uint8Array(8 * MB);
  started = performance.now();
  const fd = openSync(path, "r");
  let read = 0;
  for (let n; (n = readSync(fd, buffer)) > 0; ) read += n;
  closeSync(fd);
  const readMBps = round(read / MB / ((performance.now() - started) / 1000));
  await rm(path, { force: true });
  const floors = { durableWriteMBps, durableWriteMedianMBps: median(durableWriteMBps), fileMb, smallFilesPerSecond, readMBps, readCold };
  log(`floors: durable write ${durableWriteMBps.join(", ")} MB/s (median ${floors.durableWriteMedianMBps}); ${smallFilesPerSecond} small durable files/s; read ${readMBps} MB/s (${readCold ? "cold" : "warm"})`);
  return floors;
}

/** About `sampleMb` MB of a data set's bytes: 1 MB pieces evenly spaced over data.db and storage/ end to end. */
export function sampleOf(dataDir: string, sampleMb: number): Uint8Array {
  const files: { path: string; size: number }[] = [{ path: join(dataDir, "data.db"), size: statSync(join(dataDir, "data.db")).size }];
  for (const entry of readdirSync(join(dataDir, "storage"), { recursive: true, withFileTypes: true }).sort((a, b) => (a.parentPath + a.name < b.parentPath + b.name ? -1 : 1)))
    if (entry.isFile()) files.push({ path: join(entry.parentPath, entry.name), size: statSync(join(entry.parentPath, entry.name)).size });
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const pieces = Math.max(1, Math.min(sampleMb, Math.floor(total / MB)));
  const out = new Uint8Array(pieces * MB);
  let filled = 0;
  let fileIndex = 0;
  let fileStart = 0;
  for (let p = 0; p < pieces; p++) {
    const at = Math.floor((p * total) / pieces);
    while (fileStart + files[fileIndex]!.size <= at) fileStart += files[fileIndex++]!.size;
    // From `at` on, across as many (small) files as it takes to fill 1 MB.
    let need = MB;
    let i = fileIndex;
    let offset = at - fileStart;
    while (need > 0 && i < files.length) {
      const fd = openSync(files[i]!.path, "r");
      const n = readSync(fd, out, filled, Math.min(need, files[i]!.size - offset), offset);
      closeSync(fd);
      filled += n;
      need -= n;
      i++;
      offset = 0;
    }
  }
  return out.subarray(0, filled);
}

/** Two workers, one per core, each timing `op` over its own copy of `sample`: MB/s of input in all, and output bytes. */
async function onBothCores(workers: Worker[], op: string, sample: Uint8Array): Promise<{ MBps: number; outBytes: number }> {
  const answers = await Promise.all(
    workers.map(
      (worker) =>
        new Promise<{ ms: number; outBytes: number }>((resolve, reject) => {
          worker.onmessage = (event) => (event.data.error ? reject(new Error(event.data.error)) : resolve(event.data));
          worker.postMessage({ op, sample: sample.slice() });
        }),
    ),
  );
  const ms = Math.max(...answers.map((a) => a.ms));
  return { MBps: round((workers.length * sample.length) / MB / (ms / 1000)), outBytes: answers[0]!.outBytes };
}

/** The CPU floors over a sample of `dataDir`'s bytes. */
export async function measureCpuFloors(dataDir: string, sampleMb: number): Promise<CpuFloors> {
  const sample = sampleOf(dataDir, sampleMb);
  const workers = [0, 1].map(() => new Worker(new URL("./floor-worker.ts", import.meta.url).href));
  try {
    const zlib = await onBothCores(workers, "deflate-zlib", sample);
    const isal = await onBothCores(workers, "deflate-isal", sample).catch(() => undefined);
    const inflate = await onBothCores(workers, "inflate", sample);
    const sha = await onBothCores(workers, "sha256", sample);
    const deflate = isal ?? zlib;
    return {
      sampleMb: round(sample.length / MB),
      deflater: isal ? "isa-l" : "zlib-1",
      deflateMBps: deflate.MBps,
      deflateRatio: round(sample.length / deflate.outBytes, 2),
      zlib1MBps: zlib.MBps,
      zlib1Ratio: round(sample.length / zlib.outBytes, 2),
      inflateMBps: inflate.MBps,
      sha256MBps: sha.MBps,
      workers: workers.length,
    };
  } finally {
    for (const worker of workers) worker.terminate();
  }
}

if (import.meta.main) {
  const log = (line: string) => console.error(line);
  const [dir = "/tmp/backstream-bench", dataDir] = process.argv.slice(2);
  console.log(JSON.stringify(await measureDiskFloors(dir, log), null, 2));
  if (dataDir) console.log(JSON.stringify(await measureCpuFloors(dataDir, 32), null, 2));
}
