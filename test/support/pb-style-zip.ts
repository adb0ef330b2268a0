import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const SOURCE = resolve(import.meta.dir, "../../../shared/peers/pb-style-zip");
const BINARY = resolve(import.meta.dir, "../../node_modules/.cache/pb-style-zip");

/**
 * The path of a built `pb-style-zip` (PocketBase's archive algorithm, in Go), building it on first use.
 * Throws when Go or the peer's source is missing: .ci/run installs Go, so CI never skips these tests.
 */
export function pbStyleZip(): string {
  if (existsSync(BINARY)) return BINARY;
  if (!existsSync(join(SOURCE, "main.go"))) throw new Error(`pb-style-zip source not found at ${SOURCE}`);
  execFileSync("go", ["build", "-o", BINARY, "."], { cwd: SOURCE, env: { ...process.env, GOCACHE: resolve(BINARY, "../go-cache"), GOFLAGS: "-mod=mod" }, stdio: "pipe" });
  return BINARY;
}
