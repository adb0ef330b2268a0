import { readFileSync } from "node:fs";
import { join } from "node:path";

export const BENCH_EMAIL = "bench@example.com";
export const BENCH_PASSWORD = "bench-password-123";

const ROOT = join(import.meta.dir, "..");

/** The real server as a child process, the way it runs in production, with the restore delay set to 0. */
export interface ServerProcess {
  url: string;
  pid: number;
  output: () => string;
  stop(): Promise<void>;
}

/** `root` is the checkout whose server runs: this one by default, another commit's to compare (`--server-root`). */
export async function startServerProcess(dir: string, port: number, root = ROOT): Promise<ServerProcess> {
  const proc = Bun.spawn(["bun", "src/cli.ts", "serve", `--http=127.0.0.1:${port}`, `--dir=${dir}`], {
    cwd: root,
    env: {
      ...process.env,
      PB_SUPERUSER_EMAIL: BENCH_EMAIL,
      PB_SUPERUSER_PASSWORD: BENCH_PASSWORD,
      // PocketBase waits about a second before a restore starts; the bench measures the restore itself.
      BACKSTREAM_RESTORE_DELAY_MS: "0",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += new TextDecoder().decode(chunk);
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    const ok = await fetch(`${url}/api/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`The server did not start:\n${text}`);
    await Bun.sleep(50);
  }
  return {
    url,
    pid: proc.pid,
    output: () => text,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

export async function login(url: string): Promise<string> {
  const response = await fetch(`${url}/api/collections/_superusers/auth-with-password`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ identity: BENCH_EMAIL, password: BENCH_PASSWORD }),
  });
  if (!response.ok) throw new Error(`login failed: ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

/** Samples VmRSS of a process every `everyMs` until stopped; returns the peak in bytes. */
export function sampleRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = 0;
  const read = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
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
