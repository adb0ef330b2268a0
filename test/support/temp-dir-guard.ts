// Preloaded by bunfig.toml for every `bun test` run: fails the run when a test leaves a temp directory behind.
// Tests make their data directories, stores and scratch folders under the system temp folder with one of
// `PREFIXES` (`makeTempDir`, the s3rver helper, crafted databases); each must remove what it made, even when it
// fails. A verify's scratch copy lives in the data directory's `.pb_temp_to_delete/` (it used to come here, as
// `backstream-verify-*`, which this guard would catch).
import { afterAll, beforeAll } from "bun:test";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";

const PREFIXES = ["backstream-", "s3rver-", "tinydb-"];
/** The bench's data-set cache lives beside them on purpose and is kept between runs. */
const KEPT = new Set(["backstream-bench"]);

const ours = () => new Set(readdirSync(tmpdir()).filter((name) => PREFIXES.some((p) => name.startsWith(p)) && !KEPT.has(name)));

let before = new Set<string>();
beforeAll(() => {
  before = ours();
});

afterAll(() => {
  const left = [...ours()].filter((name) => !before.has(name));
  if (left.length) throw new Error(`Tests left temp directories behind in ${tmpdir()}: ${left.join(", ")}`);
});
