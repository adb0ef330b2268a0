import { expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { openDatabase } from "../../src/db/database-handle.ts";
import { makeTempDir } from "../support/test-server.ts";

/** Another process (the app) that takes the write lock, says so, holds it for `ms`, then commits. */
const HOLD_LOCK = `
import { createClient } from "@libsql/client";
const app = createClient({ url: "file:" + process.argv[1] });
const tx = await app.transaction("write");
await tx.execute("INSERT INTO t VALUES ('app')");
console.log("locked");
await new Promise((resolve) => setTimeout(resolve, Number(process.argv[2])));
await tx.commit();
app.close();
`;

test("every pooled connection waits for another process's lock instead of failing with SQLITE_BUSY", async () => {
  const dir = await makeTempDir();
  const path = join(dir, "data.db");
  const ours = await openDatabase(path);
  try {
    await ours.execute("CREATE TABLE t (x)");
    // Our first connection is held by a transaction, so the next statement runs on a second pooled connection:
    // the one a PRAGMA busy_timeout never reached.
    const held = await ours.transaction("read");
    await held.execute("SELECT count(*) FROM t");
    const app = Bun.spawn([process.execPath, "-e", HOLD_LOCK, path, "300"], { cwd: process.cwd(), stdout: "pipe" });
    const reader = app.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("locked");
    await ours.execute("INSERT INTO t VALUES ('ours')");
    expect(await app.exited).toBe(0);
    held.close();
    expect((await ours.execute("SELECT x FROM t ORDER BY rowid")).rows.map((r) => r[0])).toEqual(["app", "ours"]);
  } finally {
    ours.close();
    await rm(dir, { recursive: true, force: true });
  }
});
