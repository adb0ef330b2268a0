import { execFileSync, spawnSync } from "node:child_process";

const hasUnzip = spawnSync("unzip", ["-v"]).status === 0;

/**
 * Checks a zip with an independent reader, not ours nor zip.js: Info-ZIP's `unzip -t` where it is installed
 * (CI installs it), else Python's zipfile (`python3 -m zipfile -t`), which tests every CRC the same way.
 * Returns the tool's output; throws when the archive is bad.
 */
export function checkZipIndependently(path: string): string {
  if (hasUnzip) {
    const out = execFileSync("unzip", ["-t", path]).toString();
    if (!out.includes("No errors detected")) throw new Error(out);
    return out;
  }
  // zipfile exits 0 either way; it names a bad entry in its output.
  const out = execFileSync("python3", ["-m", "zipfile", "-t", path], { stdio: ["ignore", "pipe", "pipe"] }).toString();
  if (/corrupted|Error|Bad/i.test(out)) throw new Error(out);
  return "No errors detected (python3 zipfile)";
}
