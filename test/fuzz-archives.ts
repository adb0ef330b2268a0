// `npm run fuzz -- --runs=N --seed=S`: the archive reader's fuzz property (test/support/archive-fuzz.ts), run
// longer than `bun test` runs it. Prints the seed and the shrunk counterexample of any failure; exits 1 then.
import fc from "fast-check";
import { baseArchive, readMutant } from "./support/archive-fuzz.ts";
import { applyMutations, mutationsArbitrary } from "./support/zip-mutants.ts";

const flag = (name: string) => process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split("=")[1];
const runs = Number(flag("runs") ?? 5000);
const seed = Number(flag("seed") ?? Date.now() % 2 ** 31);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error("usage: npm run fuzz -- [--runs=N] [--seed=S]");
  process.exit(2);
}

const base = await baseArchive();
const outcomes = { refused: 0, accepted: 0 };
const started = performance.now();
console.log(`fuzzing the archive reader: ${runs} mutants, seed ${seed}`);
const result = await fc.check(
  fc.asyncProperty(mutationsArbitrary, async (mutations) => {
    outcomes[await readMutant(applyMutations(base, mutations))]++;
  }),
  { seed, numRuns: runs },
);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (result.failed) {
  console.error(fc.defaultReportMessage(result));
  console.error(`replay: npm run fuzz -- --runs=${runs} --seed=${seed}`);
  process.exit(1);
}
console.log(`held for ${runs} mutants in ${seconds} s (seed ${seed}): ${outcomes.refused} refused, ${outcomes.accepted} accepted as exactly what they list`);
