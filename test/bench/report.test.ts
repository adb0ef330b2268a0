// The bench's report: results written before the restore's peak RSS was measured still render as they did, and
// with it the "peak RSS" row lists the restore and judges the larger of backups and restore against 256 MB, the
// restore without the pages of the data.db its quick_check maps.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readmeFor, shapeRows, type BenchResults } from "../../bench/report.ts";

const LATEST = join(import.meta.dir, "../../bench/results/latest.json");
/** The committed results, with small-files' peaks set to `peakRss` (older results have no restore fields). */
function resultsWith(peakRss: BenchResults["shapes"][string]["peakRss"]): BenchResults {
  const res = JSON.parse(readFileSync(LATEST, "utf8")) as BenchResults;
  res.shapes["small-files"]!.peakRss = peakRss;
  return res;
}
const peakRow = (res: BenchResults) => shapeRows(res.shapes["small-files"]!).find((row) => row[0] === "peak RSS")!;

test("results without the restore's peak render, its row listing the backups only", () => {
  const res = resultsWith({ firstMb: 240, nextMb: 250 });
  expect(readmeFor(res, LATEST)).toContain("### small-files");
  expect(peakRow(res)).toEqual(["peak RSS", "250 MB", "", "", "≤ 256 MB; first 240, next 250 MB", "yes"]);
});

test("results with the restore's VmRSS and own memory only judge its VmRSS", () => {
  const res = resultsWith({ firstMb: 240, nextMb: 250, restoreMb: 300.4, restoreAnonMb: 150.2 });
  expect(peakRow(res)).toEqual(["peak RSS", "300 MB", "", "", "≤ 256 MB; first 240, next 250 MB, restore 300 MB (own memory 150)", "NO"]);
});

test("the restore is judged without the mapped data.db, its VmRSS and own memory beside it", () => {
  const within = resultsWith({ firstMb: 240, nextMb: 250, restoreMb: 357, restoreWithoutDbMb: 212, restoreAnonMb: 150 });
  expect(peakRow(within)).toEqual(["peak RSS", "250 MB", "", "", "≤ 256 MB; first 240, next 250 MB, restore 212 MB (357 with the data.db its check maps, own memory 150)", "yes"]);
  const over = resultsWith({ firstMb: 240, nextMb: 250, restoreMb: 400, restoreWithoutDbMb: 270, restoreAnonMb: 200 });
  expect(peakRow(over).slice(1, 2).concat(peakRow(over)[5]!)).toEqual(["270 MB", "NO"]);
});
