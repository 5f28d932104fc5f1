/**
 * The security controls the canaries attack (rule 6), and what a check of one reports. The list is
 * the documentation: docs/rule-06-canaries.md describes each attack in this order.
 */
export const CONTROLS = [
  'plaintext-refused',
  'client-certificate-required',
  'unknown-ca-refused',
  'expired-certificate-refused',
  'revoked-certificate-refused',
  'cross-thing-denied',
  'rate-limit-enforced',
  'tampered-update-rejected',
  'audit-chain-verifies',
] as const;

export type ControlName = (typeof CONTROLS)[number];

/**
 * - `held`: the attack was refused the way it must be.
 * - `not-held`: the attack got through (or was refused only by a later, different control).
 * - `error`: the attack could not be carried out (listener unreachable, canary could not connect):
 *   the control is not proven, so it counts as failing.
 * - `not-applicable`: nothing to attack (no update repository set up).
 */
export type ControlStatus = 'held' | 'not-held' | 'error' | 'not-applicable';

export interface ControlResult {
  readonly control: ControlName;
  readonly status: ControlStatus;
  /** When the check finished (ISO 8601). */
  readonly checkedAt: string;
  readonly durationMs: number;
  /** What was attempted and what the node answered. */
  readonly detail: string;
  /** Since when the control has had this status (the first check that saw it). */
  readonly since: string;
}

export interface ControlsReport {
  /** True when no control is `not-held` or `error`. */
  readonly held: boolean;
  /** When the last full run finished; null before the first. */
  readonly checkedAt: string | null;
  readonly controls: readonly ControlResult[];
}

/** What one check returns; the runner adds the times. */
export interface Verdict {
  readonly status: ControlStatus;
  readonly detail: string;
}

export const held = (detail: string): Verdict => ({ status: 'held', detail });
export const notHeld = (detail: string): Verdict => ({ status: 'not-held', detail });
export const checkError = (detail: string): Verdict => ({ status: 'error', detail });

export function isFailing(status: ControlStatus): boolean {
  return status === 'not-held' || status === 'error';
}

/** A report from results in CONTROLS order. */
export function reportOf(results: ReadonlyMap<ControlName, ControlResult>, checkedAt: string | null): ControlsReport {
  const controls = CONTROLS.flatMap((name) => {
    const result = results.get(name);
    return result === undefined ? [] : [result];
  });
  return { held: controls.every((c) => !isFailing(c.status)), checkedAt, controls };
}
