import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Uint8ArrayReader, ZipWriter } from "@zip.js/zip.js";
import { sourcesFromDir } from "./archive-files.ts";

const SOURCE = resolve(import.meta.dir, "../../../shared/peers/pb-style-zip");
const BINARY = resolve(import.meta.dir, "../../node_modules/.cache/pb-style-zip");

/**
 * Makes a PocketBase-style backup of `dir` at `out`: with `../shared/peers/pb-style-zip` (PocketBase's own
 * archive algorithm, in Go) wherever it can be built, which CI requires; elsewhere (a clone without the
 * shared folder beside it) with zip.js set up the same way: deflate, data descriptors, files only, no manifest.
 * Returns which of the two made it.
 */
export async function makePocketBaseZip(dir: string, out: string): Promise<"pb-style-zip" | "zip.js stand-in"> {
  const binary = pbStyleZip();
  if (binary) {
    execFileSync(binary, ["c", dir, out]);
    return "pb-style-zip";
  }
  if (process.env.CI) throw new Error(`CI must build pb-style-zip: its source is missing at ${SOURCE}, or Go is not installed`);
  const chunks: Uint8Array[] = [];
  const writer = new ZipWriter(new WritableStream({ write: (c) => void chunks.push(c) }), { level: 1, dataDescriptor: true, useWebWorkers: false });
  for (const source of await sourcesFromDir(dir)) {
    if (source.path.startsWith("backups/")) continue; // as pb-style-zip: every other file, -wal included
    await writer.add(source.path, new Uint8ArrayReader(new Uint8Array(await new Response(await source.open()).arrayBuffer())));
  }
  await writer.close();
  await Bun.write(out, new Blob(chunks as BlobPart[]));
  return "zip.js stand-in";
}

/**
 * Extracts `zip` into `dir` the way PocketBase restores a backup (`pb-style-zip x`). Returns false where the
 * peer cannot be built (a clone without the shared folder beside it); CI requires it.
 */
export function extractWithPocketBase(zip: string, dir: string): boolean {
  const binary = pbStyleZip();
  if (!binary) {
    if (process.env.CI) throw new Error(`CI must build pb-style-zip: its source is missing at ${SOURCE}, or Go is not installed`);
    return false;
  }
  execFileSync(binary, ["x", zip, dir]);
  return true;
}

/** The built peer binary, building it on first use; undefined when its source or Go is missing. */
function pbStyleZip(): string | undefined {
  if (existsSync(BINARY)) return BINARY;
  if (!existsSync(join(SOURCE, "main.go"))) return undefined;
  try {
    execFileSync("go", ["build", "-o", BINARY, "."], { cwd: SOURCE, env: { ...process.env, GOCACHE: resolve(BINARY, "../go-cache") }, stdio: "pipe" });
  } catch {
    return undefined;
  }
  return BINARY;
}
