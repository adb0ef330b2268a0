import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { ADMIN_EMAIL, ADMIN_PASSWORD } from "./test-server.ts";

const ROOT = resolve(import.meta.dir, "../..");

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** Resolves when a line matching `pattern` has been printed. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * The real server as its own process (`bun src/cli.ts serve` on a free port), so a test can SIGKILL it and
 * the bench can measure it. `root` is the checkout whose server runs (the bench compares other commits).
 */
export async function spawnServer(dir: string, env: Record<string, string> = {}, root = ROOT): Promise<ServerProcess> {
  const child = spawn(process.execPath, [resolve(root, "src/cli.ts"), "serve", "--http=127.0.0.1:0", `--dir=${dir}`], {
    cwd: root,
    env: { ...process.env, PB_SUPERUSER_EMAIL: ADMIN_EMAIL, PB_SUPERUSER_PASSWORD: ADMIN_PASSWORD, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (data: Buffer) => {
    output += data.toString();
    for (const waiter of waiters) waiter();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const waitForOutput = (pattern: RegExp, timeoutMs = 30000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(output)) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${pattern} in the server output:\n${output}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  await waitForOutput(/serving on http:\/\/127\.0\.0\.1:\d+/);
  const url = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)![1]!;
  return {
    url,
    child,
    output: () => output,
    waitForOutput,
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
