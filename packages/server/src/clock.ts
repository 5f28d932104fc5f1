/** Time is passed in, never read by domain code, so tests and periodic jobs control it. */
export interface Clock {
  now(): Date;
  /**
   * The time in milliseconds, allocating nothing: for what runs on every message. The system
   * clock reads it once per synchronous run (one callback and what it calls), so a burst of
   * packets handled in one go shares a reading no older than the run.
   */
  nowMs(): number;
}

let runMs: number | null = null;
const endRun = (): void => {
  runMs = null;
};

function nowMsOncePerRun(): number {
  if (runMs === null) {
    runMs = Date.now();
    // Microtasks run as soon as the current callback returns, before any other I/O or timer.
    queueMicrotask(endRun);
  }
  return runMs;
}

export const systemClock: Clock = { now: () => new Date(), nowMs: nowMsOncePerRun };

/** A clock that reads `now`: for tools and tests that fix or shift time. */
export function clockFrom(now: () => Date): Clock {
  return { now, nowMs: () => now().getTime() };
}
