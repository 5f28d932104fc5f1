/** Time is passed in, never read by domain code, so tests and periodic jobs control it. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
