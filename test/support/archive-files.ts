// Portable helpers (Bun, Deno, Node) to feed a directory to the archive core and extract into one.
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import type { ArchiveSourceReader } from "../../src/archive/zip/index.ts";
import type { ArchiveSource } from "../../src/archive/index.ts";

/** Every file under `root` as an archive source, `/`-separated and sorted. */
export async function sourcesFromDir(root: string): Promise<ArchiveSource[]> {
  const sources: ArchiveSource[] = [];
  const walk = async (dir: string) => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const info = await stat(path);
        sources.push({
          path: relative(root, path).split("\\").join("/"),
          size: info.size,
          lastModified: info.mtime,
          open: async () => new Blob([await readFile(path)]).stream(),
        });
      }
    }
  };
  await walk(root);
  return sources;
}

/** A sink factory for `readArchive` that writes entries under `root`. */
export function sinkToDir(root: string) {
  return async (path: string): Promise<WritableStream<Uint8Array>> => {
    const target = join(root, path);
    await mkdir(dirname(target), { recursive: true });
    const handle = await open(target, "w");
    return new WritableStream({
      write: async (chunk) => void (await handle.write(chunk)),
      close: () => handle.close(),
      abort: () => handle.close(),
    });
  };
}

/** A file as a random-access source. */
export async function fileReader(path: string): Promise<ArchiveSourceReader & { close(): Promise<void> }> {
  const handle = await open(path, "r");
  const { size } = await handle.stat();
  return {
    size,
    read: async (offset, length) => {
      const buffer = new Uint8Array(Math.min(length, size - offset));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      return buffer.subarray(0, bytesRead);
    },
    close: () => handle.close(),
  };
}

/** Writes to a file through a web WritableStream. */
export async function fileWriter(path: string): Promise<WritableStream<Uint8Array>> {
  const handle = await open(path, "w");
  return new WritableStream({
    write: async (chunk) => {
      let done = 0;
      while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
    },
    close: () => handle.close(),
    abort: () => handle.close(),
  });
}

/** relative path → SHA-256 of every file under `root`. */
export async function treeDigest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const source of await sourcesFromDir(root)) {
    out[source.path] = createHash("sha256").update(await readFile(join(root, source.path))).digest("hex");
  }
  return out;
}
