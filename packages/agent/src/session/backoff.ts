/** Reconnect delays: exponential, capped, with full jitter so a fleet that lost its server does not return in lockstep. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** The delay before attempt `attempt` (0 for the first retry): uniform in [0, min(max, initial · 2^attempt)]. */
export function fullJitterDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 40));
  return Math.floor(random() * ceiling);
}
