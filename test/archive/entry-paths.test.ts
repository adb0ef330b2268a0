import { expect, test } from "bun:test";
import { entryPathProblem, isCompressible } from "../../src/archive/entry-paths.ts";

test("entry paths must stay inside the data directory", () => {
  for (const ok of ["data.db", "storage/a/b.txt", "storage/..hidden", "a..b/c"]) expect(entryPathProblem(ok)).toBeUndefined();
  for (const bad of ["", "/etc/passwd", "C:/x", "c:x", "..", "../x", "a/../../x", "a\\b", "a//b", "./a", "a/./b", "a\u0000b", "a\nb"]) {
    expect(entryPathProblem(bad)).toBeString();
  }
});

test("already-compressed formats are stored, everything else deflated", () => {
  expect(isCompressible("data.db")).toBe(true);
  expect(isCompressible("storage/x/readme")).toBe(true);
  expect(isCompressible("storage/x/photo.JPG")).toBe(false);
  expect(isCompressible("storage/x/a.tar.gz")).toBe(false);
});
