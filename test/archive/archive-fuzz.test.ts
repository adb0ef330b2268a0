// Property-based fuzzing of the archive reader every upload check and restore goes through (see
// test/support/archive-fuzz.ts for the property). `npm run fuzz` runs the same property longer.
import { beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import { baseArchive, readMutant } from "../support/archive-fuzz.ts";
import { applyMutations, mutationsArbitrary, type Mutation } from "../support/zip-mutants.ts";

/** Fixed, so a CI failure can be replayed; `npm run fuzz -- --seed=S` explores others. */
const SEED = 20261206;
const RUNS = 300;

let base: Uint8Array;
beforeAll(async () => {
  base = await baseArchive();
});

test("the real archive itself is read whole", async () => {
  expect(await readMutant(base)).toBe("accepted");
});

test(`${RUNS} mutants of a real archive: each refused cleanly, or read as exactly the files it lists`, async () => {
  const outcomes = { refused: 0, accepted: 0 };
  // The end-record attack that once deleted every upload: the count lowered past the manifest (and further).
  const examples: [Mutation[]][] = [
    [[{ kind: "end-field", field: "count", delta: -1 }]],
    [[{ kind: "end-field", field: "count", delta: -4 }]],
    [[{ kind: "end-field", field: "cd-size", delta: -46 }]],
    [[{ kind: "manifest", edit: "drop-item-and-entry", at: 0.5 }]],
  ];
  await fc.assert(
    fc.asyncProperty(mutationsArbitrary, async (mutations) => {
      outcomes[await readMutant(applyMutations(base, mutations))]++;
    }),
    { seed: SEED, numRuns: RUNS, examples },
  );
  // The generator reaches both sides of the property: damage that must be refused, and changes that leave a
  // consistent archive (an entry and its manifest line dropped together, a flip in an unused field).
  expect(outcomes.refused).toBeGreaterThan(RUNS / 2);
  expect(outcomes.accepted).toBeGreaterThan(0);
});
