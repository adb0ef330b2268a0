import { AbortedError, deserializeError, redactPaths } from "../errors.ts";
import { checkBackupJob } from "./check-backup-job.ts";
import { createBackupJob, type JobContext } from "./create-backup-job.ts";
import { verifyBackupJob } from "./verify-backup-job.ts";
import type { JobParams, JobResults, WorkerEvent, WorkerRequest } from "./job-messages.ts";

const WORKER_URL = new URL("../../workers/job.worker.ts", import.meta.url);

/** Runs a job in this thread: what the worker calls, and what unit tests call directly. */
export function runJobInline<P extends JobParams>(params: P, context: JobContext = {}): Promise<JobResults[P["kind"]]> {
  switch (params.kind) {
    case "create":
      return createBackupJob(params, context) as Promise<JobResults[P["kind"]]>;
    case "extract":
    case "check":
      return checkBackupJob(params, context) as Promise<JobResults[P["kind"]]>;
    case "verify":
      return verifyBackupJob(params, context) as Promise<JobResults[P["kind"]]>;
  }
}

/**
 * Runs a job in a worker thread so that archiving and extraction never hold up the request thread.
 * Progress arrives through `onProgress`; aborting `signal` asks the worker to cancel and then ends it.
 * `script` is the worker's module: `job.worker.ts` but in tests of a worker that dies.
 */
export function runJobInWorker<P extends JobParams>(params: P, context: JobContext = {}, script: URL = WORKER_URL): Promise<JobResults[P["kind"]]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script);
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      context.signal?.removeEventListener("abort", onAbort);
      worker.terminate();
      fn();
    };
    const onAbort = () => {
      worker.postMessage({ type: "cancel" } satisfies WorkerRequest);
      // Give the worker a moment to abort its store write cleanly, then end it regardless.
      setTimeout(() => finish(() => reject(new AbortedError())), 2000).unref?.();
    };
    context.signal?.addEventListener("abort", onAbort, { once: true });
    worker.onmessage = (message: MessageEvent<WorkerEvent>) => {
      const event = message.data;
      if (event.type === "progress") context.onProgress?.(event.progress);
      else if (event.type === "done") finish(() => resolve(event.result as JobResults[P["kind"]]));
      else finish(() => reject(deserializeError(event.error)));
    };
    // What the runtime says of an uncaught error can be its own source code: it goes to the operator's stderr,
    // never into the job's error, which the API shows.
    worker.onerror = (event) => {
      console.error(redactPaths(`job worker error: ${event.message}`));
      finish(() => reject(new Error("The job worker failed unexpectedly.")));
    };
    // A worker that ends without an error event (killed, out of memory) would otherwise leave the job, and the
    // lock every other backup waits on, held forever.
    worker.addEventListener("close", () => finish(() => reject(new Error("The job worker ended before its job finished."))));
    worker.postMessage({ type: "start", params } satisfies WorkerRequest);
  });
}
