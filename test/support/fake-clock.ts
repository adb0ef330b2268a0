import type { SchedulerClock } from "../../src/backups/scheduler.ts";

/** A clock whose time moves only when the test says so; timers fire in order as it passes them. */
export class FakeClock implements SchedulerClock {
  #now: number;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #ids = 0;

  constructor(start: Date) {
    this.#now = start.getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#ids;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Pending timers, for asserting that nothing is armed. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time to `target`, firing every timer due on the way (each at its own time). */
  advanceTo(target: Date): void {
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= target.getTime() && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = Math.max(this.#now, target.getTime());
  }
}
