import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const hasUnzip = spawnSync("unzip", ["-v"]).status === 0;

/**
 * Checks a zip with an independent reader, not ours nor zip.js: Info-ZIP's `unzip -tq` where it is installed (CI
 * installs it; quiet, one line however many entries), else Python's zipfile (`python3 -m zipfile -t`), which
 * tests every CRC the same way.
 * Returns the tool's output; throws when the archive is bad.
 */
export function checkZipIndependently(path: string): string {
  if (hasUnzip) {
    const out = execFileSync("unzip", ["-tq", path]).toString();
    if (!out.includes("No errors detected")) throw new Error(out);
    return out;
  }
  // zipfile exits 0 either way; it names a bad entry in its output.
  const out = execFileSync("python3", ["-m", "zipfile", "-t", path], { stdio: ["ignore", "pipe", "pipe"] }).toString();
  if (/corrupted|Error|Bad/i.test(out)) throw new Error(out);
  return "No errors detected (python3 zipfile)";
}

/** `checkZipIndependently` of a zip held in memory, written to a temp file that is removed after. */
export async function checkZipBytesIndependently(bytes: Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "backstream-zip-check-"));
  try {
    await writeFile(join(dir, "a.zip"), bytes);
    return checkZipIndependently(join(dir, "a.zip"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
