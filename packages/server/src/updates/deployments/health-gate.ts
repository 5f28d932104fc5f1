/**
 * Health gating (rule 4 with rule 5's metrics): a rollout pauses or aborts when the devices it
 * updated regress against the devices it has not reached yet, even if every job "succeeded".
 * Pure: the samples come from a HealthProvider at the edge.
 */

/** What one device did since the deployment started (deltas, not totals). */
export interface HealthSample {
  /** Refused connects, publishes and subscribes (policy or certificate). */
  readonly authFailures: number;
  /** Listening ports the device reports that it did not report before. */
  readonly newListeningPorts: number;
  readonly reboots: number;
}

/** Where health samples come from (device metrics); declared here, implemented by the monitor. */
export interface HealthProvider {
  /** Samples for the things it has data on, counted from `since`; things without data are left out. */
  samples(things: readonly string[], since: Date): Promise<ReadonlyMap<string, HealthSample>>;
}

export interface HealthGate {
  /** What a regression does: stop releasing until an operator resumes, abort, or nothing. */
  readonly action: 'off' | 'pause' | 'abort';
  /** Both cohorts need this many devices with samples before they are compared. */
  readonly minCohort: number;
  /** The updated cohort's mean must pass the baseline's mean times this ... */
  readonly ratio: number;
  /** ... plus this absolute margin (per device), so a baseline of zero does not trip on one event. */
  readonly authFailuresMargin: number;
  readonly listeningPortsMargin: number;
  readonly rebootsMargin: number;
  /** Share of finished released jobs that failed to boot or confirm health that regresses. */
  readonly confirmFailureRate: number;
}

export const DEFAULT_HEALTH_THRESHOLDS: HealthGate = {
  action: 'pause',
  minCohort: 5,
  ratio: 2,
  authFailuresMargin: 1,
  listeningPortsMargin: 0.25,
  rebootsMargin: 1,
  confirmFailureRate: 0.2,
};

/** One device counts for at most this much per metric: a single noisy device cannot move a cohort alone. */
export const HEALTH_SAMPLE_CAP = 10;

export const HEALTH_METRICS = ['auth-failures', 'listening-ports', 'reboots', 'health-confirmations'] as const;
export type HealthMetric = (typeof HEALTH_METRICS)[number];

export interface HealthRegression {
  readonly metric: HealthMetric;
  /** Mean per device in the updated cohort (for health-confirmations: the failed share). */
  readonly updated: number;
  readonly baseline: number;
  /** The value the updated cohort had to stay at or below. */
  readonly limit: number;
  readonly updatedDevices: number;
  readonly baselineDevices: number;
}

export interface HealthInput {
  /** Samples of devices whose job succeeded. */
  readonly updated: readonly HealthSample[];
  /** Samples of devices not released yet (same period, old software). */
  readonly baseline: readonly HealthSample[];
  /** Released jobs that finished, and those of them that failed with boot-failed or health-check-failed. */
  readonly confirmations: { readonly finished: number; readonly failed: number };
}

const SAMPLE_FIELDS: readonly (readonly [Exclude<HealthMetric, 'health-confirmations'>, keyof HealthSample, keyof HealthGate])[] = [
  ['auth-failures', 'authFailures', 'authFailuresMargin'],
  ['listening-ports', 'newListeningPorts', 'listeningPortsMargin'],
  ['reboots', 'reboots', 'rebootsMargin'],
];

/**
 * The regressions of the updated cohort against the baseline. A device metric regresses when both
 * cohorts have at least `minCohort` samples and the updated mean is above
 * `baseline mean × ratio + margin`; failed health confirmations regress when at least `minCohort`
 * released jobs finished and their failed share is above `confirmFailureRate` (there is no
 * baseline for those: devices not updated confirm nothing).
 */
export function compareHealth(input: HealthInput, gate: HealthGate): HealthRegression[] {
  if (gate.action === 'off') return [];
  const regressions: HealthRegression[] = [];
  if (input.updated.length >= gate.minCohort && input.baseline.length >= gate.minCohort) {
    for (const [metric, field, marginKey] of SAMPLE_FIELDS) {
      const updated = mean(input.updated, field);
      const baseline = mean(input.baseline, field);
      const limit = baseline * gate.ratio + (gate[marginKey] as number);
      if (updated > limit) regressions.push({ metric, updated, baseline, limit, updatedDevices: input.updated.length, baselineDevices: input.baseline.length });
    }
  }
  const { finished, failed } = input.confirmations;
  if (finished >= gate.minCohort && failed / finished > gate.confirmFailureRate) {
    regressions.push({ metric: 'health-confirmations', updated: failed / finished, baseline: 0, limit: gate.confirmFailureRate, updatedDevices: finished, baselineDevices: 0 });
  }
  return regressions;
}

function mean(samples: readonly HealthSample[], field: keyof HealthSample): number {
  let sum = 0;
  for (const sample of samples) {
    const value = sample[field];
    sum += Number.isFinite(value) && value > 0 ? Math.min(value, HEALTH_SAMPLE_CAP) : 0;
  }
  return sum / samples.length;
}
