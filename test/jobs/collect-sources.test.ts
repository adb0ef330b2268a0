import { expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collectSources } from "../../src/jobs/collect-sources.ts";

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  // Chunks are lent (the next read fills the same memory): decoded as they come.
  for await (const chunk of stream) text += new TextDecoder().decode(chunk);
  return text;
}

test("databases first, then every regular file depth first by name; each source made as it is reached, read as it is", async () => {
  const dir = await mkdtemp(join(tmpdir(), "backstream-sources-"));
  try {
    await writeFile(join(dir, "notes.db"), "not a database, backed up as it is");
    await writeFile(join(dir, "notes.db-wal"), "left out");
    await mkdir(join(dir, "storage/b/ü"), { recursive: true });
    await mkdir(join(dir, "storage/a"), { recursive: true });
    await writeFile(join(dir, "storage/b/ü/2.txt"), "two");
    await writeFile(join(dir, "storage/a/1.txt"), "one!");
    await writeFile(join(dir, "storage/b/0.txt"), "");
    await utimes(join(dir, "storage/a/1.txt"), new Date(2024, 1, 2, 3, 4, 6), new Date(2024, 1, 2, 3, 4, 6));
    await symlink(join(dir, "storage/a/1.txt"), join(dir, "storage/link.txt"));
    const listed = await collectSources(dir);
    expect({ count: listed.count, fileBytes: listed.fileBytes, databases: listed.databases.map((s) => s.path) }).toEqual({ count: 4, fileBytes: 7, databases: ["notes.db"] });
    const sources = [...listed.sources];
    expect(sources.map((s) => [s.path, s.size])).toEqual([["notes.db", 34], ["storage/a/1.txt", 4], ["storage/b/0.txt", 0], ["storage/b/ü/2.txt", 3]]);
    expect(sources[1]!.lastModified.getTime()).toBe(new Date(2024, 1, 2, 3, 4, 6).getTime());
    // One after another, as the archive reads them: they share their read buffers.
    const contents: string[] = [];
    for (const source of sources) contents.push(await readAll(await source.open()));
    expect(contents).toEqual(["not a database, backed up as it is", "one!", "", "two"]);
    // Made anew on each pass, from the listing: nothing per file is held beside it.
    const again = [...listed.sources];
    expect(again[1]).not.toBe(sources[1]);
    expect(again.map((s) => s.path)).toEqual(sources.map((s) => s.path));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
