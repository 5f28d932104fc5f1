import type { Detection } from '../types.js';
import { metricReader, type MetricValue, type WindowMetrics } from '../metrics/window-metrics.js';
import { EMPTY_STATE, MAX_LEARNED, QUIET, step, updateBaseline, type AlarmState, type Baseline, type DeviceDetectionState } from './detection-state.js';
import { percentile, statisticPercent } from './percentile.js';
import type { Behavior, NumberOperator, SecurityProfile } from './security-profile.js';
import { setViolations } from './value-sets.js';
import { BUILTIN_RULES, type BuiltinRule, type BuiltinSettings } from './builtin-rules.js';

export interface DeviceWindowInput {
  readonly window: WindowMetrics;
  /** Names of the profiles that apply to the device (through its groups). */
  readonly profiles: readonly string[];
}

export interface WindowInput {
  /** ISO end of the window: every detection's `at`. */
  readonly windowEnd: string;
  readonly windowSeconds: number;
  readonly devices: readonly DeviceWindowInput[];
  readonly profiles: ReadonlyMap<string, SecurityProfile>;
  /** Each device's state after the previous window it was in (absent: a device new to detection). */
  readonly state: ReadonlyMap<string, DeviceDetectionState>;
  readonly builtins?: Readonly<Partial<Record<BuiltinRule, BuiltinSettings>>>;
  /** Country of an address, from a configured GeoIP table; absent: the country rule is off. */
  readonly countryOf?: (address: string) => string | null;
}

export interface WindowOutput {
  readonly detections: readonly Detection[];
  /** The new state of each device of the window (devices not in the window keep theirs). */
  readonly state: ReadonlyMap<string, DeviceDetectionState>;
  /** Fleet statistics computed, per `profile/behaviour` (for the console and tests). */
  readonly statistics: ReadonlyMap<string, number>;
}

/**
 * Evaluates one window for the whole fleet (rule 5, detection): each device's metrics against the
 * behaviours of its profiles (static values, fleet percentiles, set membership, its own EWMA
 * baseline), with consecutive-datapoint semantics, and the built-in rules (new listening port,
 * new source address or country, one certificate live from several addresses). Pure: data in,
 * data out; the caller stores the state and hands the detections to the alert service.
 */
export function evaluateWindow(input: WindowInput): WindowOutput {
  const compiled = compileProfiles(input.profiles);
  const statistics = fleetStatistics(input, compiled);
  const detections: Detection[] = [];
  const state = new Map<string, DeviceDetectionState>();
  const builtins = { ...BUILTIN_RULES, ...input.builtins };
  for (const device of input.devices) {
    const thing = device.window.thing;
    const before = input.state.get(thing) ?? EMPTY_STATE;
    // Copied on first change: most devices of most windows change no alarm.
    let alarms = before.alarms as Record<string, AlarmState>;
    let alarmsCopied = false;
    const baselines: Record<string, Baseline> = { ...before.baselines };
    for (const profileName of device.profiles) {
      const profile = compiled.get(profileName);
      if (profile === undefined) continue;
      for (const { behavior, key, read, toAlarm } of profile) {
        const value = read(device.window);
        if (value === undefined) continue;
        const judged = judge(behavior, value, key, statistics, baselines);
        if (judged === undefined) continue;
        const previous = alarms[key] ?? QUIET;
        const next = step(previous, judged.violated, toAlarm(input.windowSeconds), behavior.datapointsToClear);
        const quiet = next.state.violations === 0 && !next.state.alarming;
        if (!(quiet && previous === QUIET)) {
          if (!alarmsCopied) {
            alarms = { ...alarms };
            alarmsCopied = true;
          }
          if (quiet) delete alarms[key];
          else alarms[key] = next.state;
        }
        if (next.fire) {
          detections.push({ thing, at: input.windowEnd, behavior: behavior.name, profile: profileName, severity: behavior.severity, metric: behavior.metric, value: judged.observed, message: `${thing}: ${messageOf(behavior, judged)}`, dedupeKey: `${thing}/${key}`, actions: behavior.actions });
        }
      }
    }
    const learned = applyBuiltins(device.window, before, builtins, input.countryOf, input.windowEnd, detections);
    state.set(thing, { alarms, baselines, ...learned });
  }
  return { detections, state, statistics };
}

interface CompiledBehavior {
  readonly behavior: Behavior;
  /** `profile/behaviour`: the key of its alarm and baseline state. */
  readonly key: string;
  readonly read: (window: WindowMetrics) => MetricValue | undefined;
  readonly toAlarm: (windowSeconds: number) => number;
}

function compileProfiles(profiles: ReadonlyMap<string, SecurityProfile>): Map<string, readonly CompiledBehavior[]> {
  const compiled = new Map<string, readonly CompiledBehavior[]>();
  for (const [name, profile] of profiles) {
    compiled.set(
      name,
      profile.behaviors.map((behavior) => ({
        behavior,
        key: `${name}/${behavior.name}`,
        read: metricReader(behavior.metric),
        toAlarm: (windowSeconds: number) => Math.max(behavior.datapointsToAlarm, Math.ceil(behavior.durationSeconds / windowSeconds)),
      })),
    );
  }
  return compiled;
}

interface Judgement {
  readonly violated: boolean;
  readonly observed: unknown;
  /** The threshold (number behaviours) or the device's baseline mean and z-score (baselines). */
  readonly against?: number;
  readonly z?: number;
}

// No closures are made per device here: under a loader that names functions (tsx) each would cost.
function judge(behavior: Behavior, value: MetricValue, key: string, statistics: ReadonlyMap<string, number>, baselines: Record<string, Baseline>): Judgement | undefined {
  switch (behavior.kind) {
    case 'number': {
      if (typeof value !== 'number') return undefined;
      const threshold = 'value' in behavior.threshold ? behavior.threshold.value : statistics.get(key);
      if (threshold === undefined || Number.isNaN(threshold)) return undefined;
      return { violated: compare(behavior.operator, value, threshold), observed: value, against: threshold };
    }
    case 'set': {
      const violating = setViolations(behavior.operator, behavior.set, typeof value === 'number' ? [value] : value);
      return { violated: violating.length > 0, observed: violating };
    }
    case 'baseline': {
      if (typeof value !== 'number') return undefined;
      const baseline = baselines[key];
      baselines[key] = updateBaseline(baseline, value, behavior.alpha);
      if (baseline === undefined || baseline.n < behavior.warmupWindows) return { violated: false, observed: value };
      const z = (value - baseline.mean) / Math.max(Math.sqrt(baseline.variance), behavior.minDeviation);
      const violated = behavior.direction === 'above' ? z > behavior.zScore : behavior.direction === 'below' ? -z > behavior.zScore : Math.abs(z) > behavior.zScore;
      return { violated, observed: value, against: baseline.mean, z };
    }
    default: {
      const never: never = behavior;
      return never;
    }
  }
}

/** The detection's message, built only for a violation. */
function messageOf(behavior: Behavior, judged: Judgement): string {
  switch (behavior.kind) {
    case 'number': {
      const label = 'value' in behavior.threshold ? String(judged.against) : `${behavior.threshold.statistic} of the fleet (${judged.against})`;
      return `${behavior.metric} ${String(judged.observed)} ${behavior.operator} ${label}`;
    }
    case 'set':
      return `${behavior.metric} has ${(judged.observed as unknown[]).join(', ')} ${behavior.operator === 'in' ? 'in' : 'outside'} the behaviour's set`;
    case 'baseline':
      return `${behavior.metric} ${String(judged.observed)} is ${(judged.z ?? 0).toFixed(1)} standard deviations from the device's baseline ${(judged.against ?? 0).toFixed(1)}`;
    default: {
      const never: never = behavior;
      return never;
    }
  }
}

export function compare(operator: NumberOperator, value: number, threshold: number): boolean {
  switch (operator) {
    case 'gt':
      return value > threshold;
    case 'gte':
      return value >= threshold;
    case 'lt':
      return value < threshold;
    case 'lte':
      return value <= threshold;
    case 'eq':
      return value === threshold;
    default: {
      const never: never = operator;
      return never;
    }
  }
}

/** p90/p99 of each statistic behaviour's metric over the devices its profile applies to in this window. */
function fleetStatistics(input: WindowInput, compiled: ReadonlyMap<string, readonly CompiledBehavior[]>): Map<string, number> {
  const wanted = new Map<string, { readonly behaviors: readonly CompiledBehavior[]; readonly values: number[][] }>();
  for (const [name, behaviors] of compiled) {
    const statistical = behaviors.filter((b) => b.behavior.kind === 'number' && 'statistic' in b.behavior.threshold);
    if (statistical.length > 0) wanted.set(name, { behaviors: statistical, values: statistical.map(() => []) });
  }
  if (wanted.size === 0) return new Map();
  for (const device of input.devices) {
    for (const profileName of device.profiles) {
      const entry = wanted.get(profileName);
      if (entry === undefined) continue;
      for (let i = 0; i < entry.behaviors.length; i += 1) {
        const value = (entry.behaviors[i] as CompiledBehavior).read(device.window);
        if (typeof value === 'number') (entry.values[i] as number[]).push(value);
      }
    }
  }
  const statistics = new Map<string, number>();
  for (const { behaviors, values } of wanted.values()) {
    behaviors.forEach(({ behavior, key }, i) => {
      if (behavior.kind === 'number' && 'statistic' in behavior.threshold) statistics.set(key, percentile(values[i] as number[], statisticPercent(behavior.threshold.statistic)));
    });
  }
  return statistics;
}

function applyBuiltins(
  window: WindowMetrics,
  before: DeviceDetectionState,
  rules: Readonly<Record<BuiltinRule, BuiltinSettings>>,
  countryOf: ((address: string) => string | null) | undefined,
  at: string,
  detections: Detection[],
): Pick<DeviceDetectionState, 'ports' | 'addresses' | 'countries'> {
  const thing = window.thing;
  // New listening port: the first report teaches the device's ports; each later one not seen before is a detection.
  let ports = before.ports;
  if (window.device !== null) {
    if (ports === null) ports = window.device.listening.slice(-MAX_LEARNED);
    else {
      const known = ports;
      const fresh = window.device.listening.filter((p) => !known.includes(p));
      for (const port of fresh) builtinDetection(detections, rules, thing, at, 'new-listening-port', 'device.listening', port, `listens on ${port}, not seen before`, port);
      if (fresh.length > 0) ports = [...ports, ...fresh].slice(-MAX_LEARNED);
    }
  }
  // New source address (and country): learned from the first window with a connect.
  let addresses = before.addresses;
  let countries = before.countries;
  const sources = window.cloud.sourceAddresses;
  if (sources.length > 0) {
    const firstSeen = addresses === null;
    const known = addresses ?? [];
    const fresh = sources.filter((a) => !known.includes(a));
    if (fresh.length > 0) {
      if (!firstSeen) for (const address of fresh) builtinDetection(detections, rules, thing, at, 'new-source-address', 'cloud.sourceAddresses', address, `connected from ${address}, not seen before`, address);
      addresses = [...(addresses ?? []), ...fresh].slice(-MAX_LEARNED);
      if (countryOf !== undefined) {
        const known = new Set(countries);
        for (const address of fresh) {
          const country = countryOf(address);
          if (country === null || known.has(country)) continue;
          if (!firstSeen && known.size > 0) builtinDetection(detections, rules, thing, at, 'new-source-country', 'cloud.sourceAddresses', { address, country }, `connected from ${address} in ${country}, a country not seen before`, country);
          known.add(country);
        }
        countries = [...known];
      }
    }
  }
  // One certificate live from several addresses at the same time: a cloned credential.
  if (window.cloud.certificateAddressesMax >= 2) {
    builtinDetection(detections, rules, thing, at, 'certificate-multiple-addresses', 'cloud.certificateAddressesMax', window.cloud.certificateAddresses, `one certificate had sessions from ${window.cloud.certificateAddressesMax} addresses at once (${window.cloud.certificateAddresses.join(', ')})`, 'certificate');
  }
  return { ports, addresses, countries };
}

function builtinDetection(detections: Detection[], rules: Readonly<Record<BuiltinRule, BuiltinSettings>>, thing: string, at: string, name: BuiltinRule, metric: string, value: unknown, message: string, key: string): void {
  const settings = rules[name];
  if (!settings.enabled) return;
  detections.push({ thing, at, behavior: name, profile: null, severity: settings.severity, metric, value, message: `${thing}: ${message}`, dedupeKey: `${thing}/${name}/${key}`, actions: settings.actions });
}
