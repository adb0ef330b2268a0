import { randomBytes } from "node:crypto";
import { lstat, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { syncDir } from "../fs/durable-files.ts";
import { dataDirPaths, isDataRootEntry } from "../fs/data-dir.ts";

/**
 * Swapping restored data in, so that a crash at any moment leaves the old data or the new, never a mix.
 *
 * 1. The worker extracts and checks everything in `.pb_restore_staging/` (files fsynced). A crash here
 *    leaves the old data untouched; the next start removes the staging folder (roll back).
 * 2. A journal naming the old root entries, the new ones and a trash folder is written with temp name,
 *    fsync and rename. From this moment the restore is committed: the next start rolls forward.
 * 3. Every old root entry moves into the trash, then every new one moves in; each step is one rename, and
 *    each is skipped when already done, so replaying the journal after a crash finishes the same swap.
 * 4. The (by then empty) staging folder is removed, and only then the journal: so a staging folder without a
 *    journal only ever means an uncommitted restore, and recovery never mistakes a finished one for it.
 *    The trash stays until the next start (`.pb_temp_to_delete/`).
 */

const JournalSchema = v.object({
  version: v.literal(1),
  trash: v.pipe(v.string(), v.regex(/^restore_[0-9a-z_]+$/)),
  oldEntries: v.array(v.string()),
  newEntries: v.array(v.string()),
});
type Journal = v.InferOutput<typeof JournalSchema>;

/** Named steps of a swap, for the crash tests' pause hook. */
export type SwapStep = "journal-written" | "old-moved" | "new-moved" | "staging-removed";

/** What `recoverRestore` did at a start. */
export type RecoveryOutcome = "rolled-forward" | "rolled-back" | "clean";

/** Commits the staged restore and swaps it in. The database must be closed by the caller first. */
export async function swapInRestoredData(dir: string, onStep: (step: SwapStep) => Promise<void> = async () => {}): Promise<void> {
  const paths = dataDirPaths(dir);
  const journal: Journal = {
    version: 1,
    trash: `restore_${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}_${randomBytes(3).toString("hex")}`,
    oldEntries: (await readdir(dir)).filter(isDataRootEntry).sort(),
    newEntries: (await readdir(paths.staging)).filter(isDataRootEntry).sort(),
  };
  const temp = `${paths.journal}.tmp`;
  const handle = await open(temp, "w");
  try {
    await handle.writeFile(JSON.stringify(journal));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, paths.journal);
  await syncDir(dir);
  await onStep("journal-written");
  await applyJournal(dir, journal, onStep);
}

/**
 * Run at every start before the database opens: finishes a committed swap, or discards an uncommitted
 * restore, then empties the trash of the previous run. Returns what it did, for the log.
 */
export async function recoverRestore(dir: string): Promise<RecoveryOutcome> {
  const paths = dataDirPaths(dir);
  let outcome: RecoveryOutcome = "clean";
  const journalText = await readFile(paths.journal, "utf8").catch(() => undefined);
  if (journalText !== undefined) {
    const parsed = v.safeParse(JournalSchema, safeJson(journalText));
    if (!parsed.success) throw new Error("The restore journal is unreadable; the data directory needs a manual look.");
    await applyJournal(dir, parsed.output);
    outcome = "rolled-forward";
  } else if (await exists(paths.staging)) {
    outcome = "rolled-back";
  }
  await rm(paths.staging, { recursive: true, force: true });
  await rm(`${paths.journal}.tmp`, { force: true });
  // The replaced data of the previous restore is kept until now (SPEC.md §3, Restore).
  await rm(paths.trash, { recursive: true, force: true });
  return outcome;
}

async function applyJournal(dir: string, journal: Journal, onStep: (step: SwapStep) => Promise<void> = async () => {}) {
  const paths = dataDirPaths(dir);
  const trash = join(paths.trash, journal.trash);
  await mkdir(trash, { recursive: true });
  for (const name of journal.oldEntries) {
    // Moved already when the trash holds it; the root may by then hold the new entry of the same name.
    if (!(await exists(join(trash, name))) && (await exists(join(dir, name)))) await rename(join(dir, name), join(trash, name));
  }
  await syncDir(trash);
  await syncDir(dir);
  await onStep("old-moved");
  for (const name of journal.newEntries) {
    if (await exists(join(paths.staging, name))) await rename(join(paths.staging, name), join(dir, name));
  }
  await syncDir(dir);
  await onStep("new-moved");
  // Staging first, then the journal (see the top of this file): a crash between the two leaves the journal,
  // which replays as a no-op and is told as the finished restore it is.
  await rm(paths.staging, { recursive: true, force: true });
  await syncDir(dir);
  await onStep("staging-removed");
  await rm(paths.journal);
  await syncDir(dir);
}

/** The start-up log line for what recovery did, in words that say where the data stands; none when clean. */
export function recoveryMessage(outcome: RecoveryOutcome): string | undefined {
  if (outcome === "rolled-forward") return "an interrupted restore was found and finished (rolled forward): the restored data is in place";
  if (outcome === "rolled-back") return "an interrupted restore was found and discarded (rolled back): the data is as it was before the restore";
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
