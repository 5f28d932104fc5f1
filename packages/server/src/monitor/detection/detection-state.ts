/** What detection remembers about a device between windows (JSON-serialisable, stored per device). */
export interface DeviceDetectionState {
  /** Per `profile/behaviour`: the consecutive-datapoint machine. */
  readonly alarms: Readonly<Record<string, AlarmState>>;
  /** Per `profile/behaviour` of a baseline behaviour: the device's EWMA mean and variance. */
  readonly baselines: Readonly<Record<string, Baseline>>;
  /** Listening sockets (`tcp/22`) seen; null until the device's first report taught them. */
  readonly ports: readonly string[] | null;
  /** Source addresses seen, newest last; null until the first window with one. */
  readonly addresses: readonly string[] | null;
  /** Countries of those addresses (only with a GeoIP table). */
  readonly countries: readonly string[];
}

export interface AlarmState {
  readonly violations: number;
  readonly clears: number;
  readonly alarming: boolean;
}

export interface Baseline {
  readonly n: number;
  readonly mean: number;
  readonly variance: number;
}

export const EMPTY_STATE: DeviceDetectionState = { alarms: {}, baselines: {}, ports: null, addresses: null, countries: [] };
export const QUIET: AlarmState = { violations: 0, clears: 0, alarming: false };

/** Learned ports and addresses kept per device (newest kept). */
export const MAX_LEARNED = 256;

/**
 * One datapoint through the consecutive-datapoint machine: `toAlarm` violating datapoints in a row
 * raise an alarm, `toClear` non-violating ones in a row clear it. `fire` is true for every
 * violating datapoint while (or as) the alarm is raised: each is a detection (the alert service dedupes).
 */
export function step(state: AlarmState, violated: boolean, toAlarm: number, toClear: number): { readonly state: AlarmState; readonly fire: boolean } {
  if (violated) {
    const violations = state.violations + 1;
    const alarming = state.alarming || violations >= toAlarm;
    return { state: { violations, clears: 0, alarming }, fire: alarming };
  }
  const clears = state.clears + 1;
  return { state: { violations: 0, clears, alarming: state.alarming && clears < toClear }, fire: false };
}

/** EWMA mean and variance (West's incremental form); the first value starts the baseline. */
export function updateBaseline(baseline: Baseline | undefined, value: number, alpha: number): Baseline {
  if (baseline === undefined || baseline.n === 0) return { n: 1, mean: value, variance: 0 };
  const diff = value - baseline.mean;
  const increment = alpha * diff;
  return { n: baseline.n + 1, mean: baseline.mean + increment, variance: (1 - alpha) * (baseline.variance + diff * increment) };
}
