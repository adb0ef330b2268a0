// A thin shell: takes one job, runs it with the same function the tests run inline, reports back.
import { serializeError } from "../src/errors.ts";
import type { WorkerEvent, WorkerRequest } from "../src/jobs/job-messages.ts";
import { runJobInline } from "../src/jobs/run-job.ts";
import { lowerJobThreadPriority } from "../src/jobs/thread-priority.ts";

declare const self: Worker;
const cancel = new AbortController();
const post = (event: WorkerEvent) => self.postMessage(event);

// Progress is throttled here so a fast job does not flood the server thread with messages;
// a new phase and the final figures always go through.
let lastProgress = 0;
let lastPhase = "";

self.onmessage = async (message: MessageEvent<WorkerRequest>) => {
  const request = message.data;
  if (request.type === "cancel") return cancel.abort();
  try {
    await lowerJobThreadPriority();
    const result = await runJobInline(request.params, {
      signal: cancel.signal,
      onProgress: (progress) => {
        const now = Date.now();
        if (now - lastProgress < 100 && progress.phase === lastPhase && progress.bytesDone < progress.bytesTotal) return;
        lastProgress = now;
        lastPhase = progress.phase;
        post({ type: "progress", progress });
      },
    });
    post({ type: "done", result });
  } catch (error) {
    post({ type: "error", error: serializeError(error) });
  }
};
