import { randomUUID } from "node:crypto";
import { redactPaths } from "../errors.ts";
import type { JobProgress } from "./job-messages.ts";

/** What a job does, as the tracker shows it and the service's job lock records its holder. */
export type JobKind = "create" | "restore" | "upload" | "scheduled" | "verify";

/** A job as `/api/jobs` shows it: numbers from the sources, an error as a message (never a stack or a path). */
export interface JobRecord {
  id: string;
  kind: JobKind;
  key: string;
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  entriesDone: number;
  entriesTotal: number;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

const RECENT = 20;

/** Keeps the running job and the last outcomes in memory, and tells listeners about every change. */
export class JobTracker {
  #active: JobRecord | undefined;
  #recent: JobRecord[] = [];
  #listeners = new Set<(job: JobRecord) => void>();

  get active(): JobRecord | undefined {
    return this.#active;
  }

  /** Newest first. */
  get recent(): JobRecord[] {
    return [...this.#recent];
  }

  start(kind: JobKind, key: string): JobRecord {
    const job: JobRecord = {
      id: randomUUID(), kind, key, phase: "starting", bytesDone: 0, bytesTotal: 0, entriesDone: 0, entriesTotal: 0,
      startedAt: new Date().toISOString(), finishedAt: null, error: null,
    };
    this.#active = job;
    this.#emit(job);
    return job;
  }

  /** Records progress; numbers never go backwards, whatever order messages arrive in. */
  progress(job: JobRecord, progress: Partial<JobProgress>): void {
    if (progress.phase) job.phase = progress.phase;
    for (const field of ["bytesDone", "bytesTotal", "entriesDone", "entriesTotal"] as const) {
      const value = progress[field];
      if (value !== undefined) job[field] = Math.max(job[field], value);
    }
    this.#emit(job);
  }

  finish(job: JobRecord, error?: unknown): void {
    job.finishedAt = new Date().toISOString();
    if (error === undefined) {
      job.phase = "done";
      job.bytesDone = job.bytesTotal = Math.max(job.bytesDone, job.bytesTotal);
      job.entriesDone = job.entriesTotal = Math.max(job.entriesDone, job.entriesTotal);
    } else {
      job.phase = "failed";
      job.error = redactPaths(error instanceof Error ? error.message : String(error));
    }
    if (this.#active === job) this.#active = undefined;
    this.#recent = [job, ...this.#recent].slice(0, RECENT);
    this.#emit(job);
  }

  /** The most recent finished job, for "what happened to my restore?". */
  get last(): JobRecord | undefined {
    return this.#recent[0];
  }

  subscribe(listener: (job: JobRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(job: JobRecord) {
    for (const listener of this.#listeners) listener({ ...job });
  }
}
