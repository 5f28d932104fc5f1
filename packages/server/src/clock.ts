/** Time is passed in, never read by domain code, so tests and periodic jobs control it. */
export interface Clock {
  now(): Date;
  /** The same instant in milliseconds, allocating nothing: for what runs on every message. */
  nowMs(): number;
}

export const systemClock: Clock = { now: () => new Date(), nowMs: Date.now };

/** A clock that reads `now`: for tools and tests that fix or shift time. */
export function clockFrom(now: () => Date): Clock {
  return { now, nowMs: () => now().getTime() };
}
