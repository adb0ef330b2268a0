// The bench's report: results written before the restore's peak RSS was measured still render as they did, and
// with it the "peak RSS" row lists the restore and judges the larger of backups and restore against 256 MB.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readmeFor, shapeRows, type BenchResults } from "../../bench/report.ts";

const LATEST = join(import.meta.dir, "../../bench/results/latest.json");
const latest = () => JSON.parse(readFileSync(LATEST, "utf8")) as BenchResults;
const peakRow = (res: BenchResults, shape: string) => shapeRows(res.shapes[shape]!).find((row) => row[0] === "peak RSS")!;

test("results without the restore's peak render, its row listing the backups only", () => {
  const res = latest();
  expect(readmeFor(res, LATEST)).toContain("### small-files");
  const s = res.shapes["small-files"]!;
  expect(peakRow(res, "small-files")[4]).toBe(`≤ 256 MB; first ${s.peakRss.firstMb.toFixed(0)}, next ${s.peakRss.nextMb.toFixed(0)} MB`);
});

test("the restore's peak is listed, with its own memory, and a restore over 256 MB fails the row", () => {
  const res = latest();
  const s = res.shapes["small-files"]!;
  Object.assign(s.peakRss, { firstMb: 240, nextMb: 250, restoreMb: 300.4, restoreAnonMb: 150.2 });
  expect(peakRow(res, "small-files")).toEqual(["peak RSS", "300 MB", "", "", "≤ 256 MB; first 240, next 250 MB, restore 300 MB (own memory 150)", "NO"]);
  Object.assign(s.peakRss, { restoreMb: 230, restoreAnonMb: 120 });
  expect(peakRow(res, "small-files").slice(1, 2).concat(peakRow(res, "small-files")[5]!)).toEqual(["250 MB", "yes"]);
});
