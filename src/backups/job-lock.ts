import { BackupBusyError } from "../errors.ts";
import type { JobKind } from "../jobs/job-tracker.ts";

/** What holds the lock: the kind of job and the backup it works on. */
export interface LockHolder {
  kind: JobKind;
  key: string;
}

/**
 * A key another operation has reserved: the job's own key while a job runs, or a key a delete is removing.
 * The caller answers as the spec does for that route (a missing key, an existing name, a backup in use).
 */
export class KeyReservedError extends Error {
  override name = "KeyReservedError";
  constructor(
    readonly key: string,
    /** Who has it: the running job, or a delete in flight. */
    readonly by: "job" | "delete",
  ) {
    super(`The backup ${key} is in use.`);
  }
}

/**
 * The one-job lock shared by every route and the scheduler: one backup, restore or verify at a time. Beside it,
 * key reservations: the running job's key counts as reserved, and a delete reserves its key for as long as it
 * runs. Deletes of other keys go on while a job runs (PocketBase allows it; the scheduler's pruning relies on
 * it), but a job and a delete never work on one key at once. Taking the lock or a reservation is synchronous,
 * so callers take it before they look the key up: no other request can slip in between the look and the work.
 */
export class JobLock {
  #holder: LockHolder | undefined;
  readonly #deleting = new Set<string>();

  get holder(): LockHolder | undefined {
    return this.#holder;
  }

  get busy(): boolean {
    return this.#holder !== undefined;
  }

  /** Throws `BackupBusyError` when a job holds the lock. */
  assertFree(): void {
    if (this.#holder) throw new BackupBusyError();
  }

  /**
   * Takes the lock or throws: `BackupBusyError` when a job holds it, `KeyReservedError` when a delete of the
   * holder's key is in flight. The returned function releases it (once).
   */
  acquire(holder: LockHolder): () => void {
    this.assertFree();
    if (this.#deleting.has(holder.key)) throw new KeyReservedError(holder.key, "delete");
    this.#holder = holder;
    return once(() => {
      this.#holder = undefined;
    });
  }

  /**
   * Reserves a key for a delete, or throws `KeyReservedError` when the running job works on it or another
   * delete of it is in flight. The returned function releases the reservation (once).
   */
  reserveKey(key: string): () => void {
    if (this.#holder?.key === key) throw new KeyReservedError(key, "job");
    if (this.#deleting.has(key)) throw new KeyReservedError(key, "delete");
    this.#deleting.add(key);
    return once(() => {
      this.#deleting.delete(key);
    });
  }
}

function once(release: () => void): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    release();
  };
}
