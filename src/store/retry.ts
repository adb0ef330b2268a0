/** How often and how patiently a store retries what may fail for a moment (object storage, networks). */
export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Delay before the second try; each later delay doubles (with up to 25% jitter). */
  baseDelayMs: number;
}

/** 6 tries from 100 ms: waits of 0.1, 0.2, 0.4, 0.8 and 1.6 s, about 3 s in all before giving up. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 100 };

/** Runs `task` until it succeeds, `shouldRetry` says no, or the attempts run out; throws the last error. */
export async function withRetry<T>(
  task: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  shouldRetry: (error: unknown) => boolean,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    try {
      return await task(attempt);
    } catch (error) {
      lastError = error;
      if (attempt === policy.attempts || !shouldRetry(error)) break;
      await delay(backoff(policy, attempt));
    }
  }
  throw lastError;
}

/** The wait after `attempt` failed. */
export function backoff(policy: RetryPolicy, attempt: number): number {
  const base = policy.baseDelayMs * 2 ** (attempt - 1);
  return base + Math.random() * base * 0.25;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
