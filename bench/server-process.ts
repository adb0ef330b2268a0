import { readFileSync } from "node:fs";
import { spawnServer } from "../test/support/server-process.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD } from "../test/support/test-server.ts";

/** The real server as a child process, the way it runs in production, with the restore delay set to 0. */
export interface ServerProcess {
  url: string;
  pid: number;
  output: () => string;
  stop(): Promise<void>;
}

/**
 * `root` is the checkout whose server runs: this one by default, another commit's to compare (`--server-root`);
 * `env` adds to the server's environment.
 */
export async function startServerProcess(dir: string, root?: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  // PocketBase waits about a second before a restore starts; the bench measures the restore itself.
  const server = await spawnServer(dir, { BACKSTREAM_RESTORE_DELAY_MS: "0", ...env }, root);
  return {
    url: server.url,
    pid: server.child.pid!,
    output: server.output,
    stop: () => server.kill("SIGTERM"),
  };
}

export async function login(url: string): Promise<string> {
  const response = await fetch(`${url}/api/collections/_superusers/auth-with-password`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ identity: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
  });
  if (!response.ok) throw new Error(`login failed: ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

/**
 * What `sampleRss` measures: VmRSS or RssAnon of /proc/<pid>/status (RssAnon: the process's own memory, without
 * any file pages it maps), or `VmRSS-without-db`: VmRSS less the pages of database files (`*.db`) the process
 * maps, from /proc/<pid>/smaps. A restore's quick_check maps the staged data.db: those are clean page-cache pages
 * that VmRSS counts, not memory the process holds.
 */
export type RssMeasure = "VmRSS" | "RssAnon" | "VmRSS-without-db";

/** Samples `measure` every `everyMs` until stopped; returns the peak in bytes. */
export function sampleRss(pid: number, everyMs = 20, measure: RssMeasure = "VmRSS"): { stop(): number } {
  let peak = 0;
  const pattern = new RegExp(`${measure === "RssAnon" ? "RssAnon" : "VmRSS"}:\\s+(\\d+)`);
  const read = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      let kb = Number(pattern.exec(status)?.[1] ?? 0);
      if (measure === "VmRSS-without-db") kb -= mappedDatabaseKb(readFileSync(`/proc/${pid}/smaps`, "utf8"));
      peak = Math.max(peak, kb * 1024);
    } catch {
      // the process may be gone
    }
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return peak;
    },
  };
}

/** The resident kB of the mappings of `*.db` files in a /proc/<pid>/smaps text. */
export function mappedDatabaseKb(smaps: string): number {
  let kb = 0;
  let database = false;
  for (const line of smaps.split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) database = /\.db(?: \(deleted\))?$/.test(line);
    else if (database && line.startsWith("Rss:")) kb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
  }
  return kb;
}

/** Calls GET /api/health in a loop (every `everyMs`) until stopped; returns the latencies in ms. */
export function pingHealth(url: string, token: string, everyMs = 10): { stop(): Promise<number[]> } {
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const response = await fetch(`${url}/api/health`, { headers: { Authorization: token } });
      await response.arrayBuffer();
      latencies.push(performance.now() - started);
      await Bun.sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return latencies;
    },
  };
}

/**
 * Listens to `/api/jobs/events` (the server's own job stream, as an SDK would) for the next job of `kind` on
 * `key` to finish. Resolves once the stream is open (start the job after that); `done` then resolves with that
 * job's record. A listener costs the server at most four progress events a second while the job runs, where
 * polling every few ms takes CPU from it.
 */
export async function watchNextJob(url: string, token: string, kind: string, key: string): Promise<{ done: Promise<{ phase: string; error: string | null }>; close(): void }> {
  const abort = new AbortController();
  const response = await fetch(`${url}/api/jobs/events`, { headers: { Authorization: token }, signal: abort.signal });
  if (response.status !== 200 || !response.body) throw new Error(`/api/jobs/events answered ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  /** The next complete event, by name and parsed data. */
  const nextEvent = async (): Promise<{ event: string; data: unknown }> => {
    for (;;) {
      const end = buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) return { event, data: JSON.parse(data) };
        continue; // a keep-alive comment
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("/api/jobs/events ended before the job finished");
      buffer += value;
    }
  };
  if ((await nextEvent()).event !== "snapshot") throw new Error("/api/jobs/events did not start with a snapshot");
  const done = (async () => {
    for (;;) {
      const { event, data } = await nextEvent();
      const job = data as { kind: string; key: string; phase: string; error: string | null };
      if (event === "done" && job.kind === kind && job.key === key) return job;
    }
  })();
  done.catch(() => {}).finally(() => abort.abort());
  return { done, close: () => abort.abort() };
}
