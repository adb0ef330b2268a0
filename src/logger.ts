import { redactPaths } from "./errors.ts";

/** A minimal structured logger: one line per event, no stacks of user-facing errors, no absolute paths. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, error?: unknown, fields?: Record<string, unknown>): void;
}

export function createLogger(write: (line: string) => void = (line) => console.log(line)): Logger {
  const emit = (level: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : "";
    write(`${new Date().toISOString()} ${level} ${redactPaths(message + extra)}`);
  };
  return {
    info: (message, fields) => emit("INFO", message, fields),
    warn: (message, fields) => emit("WARN", message, fields),
    error: (message, error, fields) =>
      emit("ERROR", message, { ...fields, ...(error ? { cause: error instanceof Error ? `${error.name}: ${error.message}` : String(error) } : {}) }),
  };
}

/** A logger that keeps lines in memory, for tests that assert what was (and was not) logged. */
export function createMemoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger((line) => lines.push(line)), { lines });
}
