// The schedule's cron expressions, read one way by the settings' validation and by the scheduler that runs them
// (backups/scheduler.ts).
import { Cron } from "croner";

/** Checks a cron expression the way the scheduler will run it; returns a problem message or undefined. */
export function cronProblem(expression: string): string | undefined {
  if (!expression) return undefined;
  try {
    toCron(expression);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A paused croner job for `expression`, to ask for run times; throws on an invalid expression. */
export function toCron(expression: string): Cron {
  const trimmed = expression.trim();
  // 5 fields (minute precision) or a macro such as @daily; always UTC, whatever the host's zone.
  return new Cron(trimmed, { paused: true, timezone: "UTC", ...(trimmed.startsWith("@") ? {} : { mode: "5-part" as const }) });
}
