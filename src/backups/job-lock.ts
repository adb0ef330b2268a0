import { BackupBusyError } from "../errors.ts";

export type JobKind = "create" | "restore" | "upload" | "scheduled" | "verify";

/** What holds the lock: the kind of job and the backup it works on. */
export interface LockHolder {
  kind: JobKind;
  key: string;
}

/** The one-job lock shared by every route and the scheduler: one backup, restore or verify at a time. */
export class JobLock {
  #holder: LockHolder | undefined;

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

  /** Takes the lock or throws `BackupBusyError`; the returned function releases it (once). */
  acquire(holder: LockHolder): () => void {
    this.assertFree();
    this.#holder = holder;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holder = undefined;
    };
  }
}
