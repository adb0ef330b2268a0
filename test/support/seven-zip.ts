// 7-Zip (`7zz`, Debian's `7zip` package) as the independent reader of encrypted archives. Where it is missing the
// tests that need it skip and say so, except under CI=true: `.ci/run` installs it, so there its absence fails them.
import { spawnSync } from "node:child_process";

const installed = spawnSync("7zz", ["i"], { stdio: "ignore" }).status === 0;
if (!installed && process.env.CI !== "true") console.warn("7zz not found: the tests that open encrypted archives with 7-Zip are skipped (apt-get install 7zip)");

/** Whether to skip a test that runs `7zz`. */
export const skipWithout7zip = !installed && process.env.CI !== "true";
