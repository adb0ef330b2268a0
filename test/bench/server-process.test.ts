// The bench's memory figure for restores: the resident pages of mapped *.db files are taken out of VmRSS.
import { expect, test } from "bun:test";
import { mappedDatabaseKb } from "../../bench/server-process.ts";

test("mappedDatabaseKb sums the Rss of *.db mappings only, deleted ones included", () => {
  const smaps = [
    "55d0a0000000-55d0a1000000 r-xp 00000000 fd:01 123  /work/node_modules/bun/bin/bun.exe",
    "Size:              16384 kB",
    "Rss:               47000 kB",
    "7f0000000000-7f0010000000 r--s 00000000 fd:01 456  /data/.pb_restore_staging/data.db",
    "Size:             262144 kB",
    "Rss:              204800 kB",
    "7f0010000000-7f0010100000 rw-p 00000000 00:00 0 ",
    "Rss:                1024 kB",
    "7f0020000000-7f0020100000 r--s 00000000 fd:01 789  /data/auxiliary.db (deleted)",
    "Rss:                 512 kB",
    "7f0030000000-7f0030100000 r--s 00000000 fd:01 790  /data/data.db-shm",
    "Rss:                  32 kB",
  ].join("\n");
  expect(mappedDatabaseKb(smaps)).toBe(204800 + 512);
});
