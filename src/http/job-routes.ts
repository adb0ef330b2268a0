import { Elysia } from "elysia";
import type { AppContext } from "../app-context.ts";
import type { JobRecord } from "../jobs/job-tracker.ts";
import { requireSuperuser } from "./auth-guard.ts";

/** At most this many progress events a second per job; start and final events always go out at once. */
const EVENTS_PER_SECOND = 4;
const HEARTBEAT_MS = 15_000;

/** `/api/jobs` and its Server-Sent Events stream: the running job and recent outcomes. */
export const jobRoutes = (ctx: AppContext) =>
  new Elysia()
    .get("/api/jobs", async ({ request }) => {
      await requireSuperuser(ctx.auth, request);
      return snapshot(ctx);
    })
    .get("/api/jobs/events", async ({ request }) => {
      await requireSuperuser(ctx.auth, request);
      return new Response(jobEventStream(ctx, request.signal), {
        headers: { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" },
      });
    });

function snapshot(ctx: AppContext): { active: JobRecord | null; recent: JobRecord[] } {
  return { active: ctx.jobs.active ? { ...ctx.jobs.active } : null, recent: ctx.jobs.recent };
}

/**
 * `snapshot` first (the same body as GET /api/jobs), then `progress` events for a running job, throttled
 * per job, and one `done` event per job once it has finished (its outcome in `phase` and `error`).
 */
function jobEventStream(ctx: AppContext, signal: AbortSignal): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cleanup = () => {};
  return new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      const send = (event: string, data: unknown) => {
        if (closed) return;
        try {
          controller.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
        } catch {
          cleanup();
        }
      };
      const lastSent = new Map<string, number>();
      const pending = new Map<string, { job: JobRecord; timer: ReturnType<typeof setTimeout> }>();
      const unsubscribe = ctx.jobs.subscribe((job) => {
        if (job.finishedAt) {
          const waiting = pending.get(job.id);
          if (waiting) clearTimeout(waiting.timer);
          pending.delete(job.id);
          lastSent.delete(job.id);
          return send("done", job);
        }
        const interval = 1000 / EVENTS_PER_SECOND;
        const due = (lastSent.get(job.id) ?? 0) + interval;
        const now = Date.now();
        const waiting = pending.get(job.id);
        if (waiting) {
          waiting.job = job; // the timer sends the newest numbers
          return;
        }
        if (now >= due) {
          lastSent.set(job.id, now);
          return send("progress", job);
        }
        const entry = {
          job,
          timer: setTimeout(() => {
            pending.delete(job.id);
            lastSent.set(job.id, Date.now());
            send("progress", entry.job);
          }, due - now),
        };
        pending.set(job.id, entry);
      });
      const heartbeat = setInterval(() => {
        if (closed) return;
        try {
          controller.enqueue(encoder.encode(": keep-alive\n\n"));
        } catch {
          cleanup();
        }
      }, HEARTBEAT_MS);
      cleanup = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
        for (const { timer } of pending.values()) clearTimeout(timer);
        try {
          controller.close();
        } catch {
          // already closed by the client
        }
      };
      signal.addEventListener("abort", () => cleanup(), { once: true });
      send("snapshot", snapshot(ctx));
    },
    cancel() {
      cleanup();
    },
  });
}
