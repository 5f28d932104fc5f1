import { CUSTOM_METRIC_NAME, FleetwardError } from '@fleetward/protocol';
import { isStandardMetric, STANDARD_METRICS, type MetricKind } from '../metrics/window-metrics.js';
import { RESPONSE_ACTIONS, SEVERITIES, type ResponseActionName, type Severity } from '../types.js';
import { FLEET_STATISTICS, type FleetStatistic } from './percentile.js';
import { cidrSet, portSet, stringSet, type ValueSet } from './value-sets.js';

export const NUMBER_OPERATORS = ['gt', 'lt', 'gte', 'lte', 'eq'] as const;
export type NumberOperator = (typeof NUMBER_OPERATORS)[number];
export const SET_OPERATORS = ['in', 'not-in'] as const;
export type SetOperator = (typeof SET_OPERATORS)[number];
export const BASELINE_DIRECTIONS = ['above', 'below', 'both'] as const;

interface BehaviorCommon {
  readonly name: string;
  readonly metric: string;
  readonly severity: Severity;
  readonly actions: readonly ResponseActionName[];
  /** Consecutive violating datapoints (windows with the metric) before it alarms; at least 1. */
  readonly datapointsToAlarm: number;
  /** Consecutive non-violating datapoints before an alarm clears. */
  readonly datapointsToClear: number;
  /** Alternative to datapointsToAlarm: how long it must hold (rounded up to whole windows; the larger wins). */
  readonly durationSeconds: number;
  /**
   * Judged the moment the running window's count passes the value, not when the window closes
   * (a flood is contained in seconds): only `gt`/`gte` on a static value of a counter of the
   * gateway (IMMEDIATE_METRICS), with one datapoint to alarm.
   */
  readonly immediate: boolean;
}

/** The gateway's own counters, which it can compare as they grow. */
export const IMMEDIATE_METRICS = ['cloud.messagesIn', 'cloud.bytesIn', 'cloud.authzFailures', 'cloud.authnFailures', 'cloud.connectAttempts'] as const;
export type ImmediateMetric = (typeof IMMEDIATE_METRICS)[number];

export type Behavior =
  | (BehaviorCommon & { readonly kind: 'number'; readonly operator: NumberOperator; readonly threshold: { readonly value: number } | { readonly statistic: FleetStatistic } })
  | (BehaviorCommon & { readonly kind: 'set'; readonly operator: SetOperator; readonly set: ValueSet })
  | (BehaviorCommon & {
      readonly kind: 'baseline';
      /** How far from the device's own mean, in standard deviations, is a sudden deviation. */
      readonly zScore: number;
      /** Windows the baseline learns before it judges. */
      readonly warmupWindows: number;
      /** EWMA weight of the newest window, 0 < alpha ≤ 1. */
      readonly alpha: number;
      /** Smallest standard deviation assumed (the metric's units): a flat series does not alarm on noise. */
      readonly minDeviation: number;
      readonly direction: (typeof BASELINE_DIRECTIONS)[number];
    });

/** A named set of behaviours, attached to groups: each applies to every device in those groups. */
export interface SecurityProfile {
  readonly name: string;
  readonly description: string;
  readonly behaviors: readonly Behavior[];
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
export const MAX_BEHAVIORS = 64;

/** Validates a profile document (the JSON an operator writes) into a profile; throws FW_ERR_VALIDATION naming the field. */
export function parseSecurityProfile(document: unknown, customKinds: ReadonlyMap<string, MetricKind> = new Map()): SecurityProfile {
  const doc = record(document, 'the profile');
  const name = text(doc.name, 'name');
  if (!NAME.test(name)) fail(`name must match ${NAME.source}`);
  const behaviors = doc.behaviors;
  if (!Array.isArray(behaviors) || behaviors.length > MAX_BEHAVIORS) fail(`behaviors must be an array of at most ${MAX_BEHAVIORS}`);
  const parsed = (behaviors as unknown[]).map((b, i) => parseBehavior(b, `behaviors[${i}]`, customKinds));
  const names = new Set(parsed.map((b) => b.name));
  if (names.size !== parsed.length) fail('behavior names must be unique within a profile');
  return { name, description: doc.description === undefined ? '' : text(doc.description, 'description', 512), behaviors: parsed };
}

function parseBehavior(input: unknown, at: string, customKinds: ReadonlyMap<string, MetricKind>): Behavior {
  const b = record(input, at);
  const name = text(b.name, `${at}.name`);
  if (!NAME.test(name)) fail(`${at}.name must match ${NAME.source}`);
  const metric = text(b.metric, `${at}.metric`);
  const kind = metricKind(metric, customKinds);
  if (kind === undefined) fail(`${at}.metric ${metric} is not a standard metric (${Object.keys(STANDARD_METRICS).join(', ')}) or custom.<name>`);
  const severity = (b.severity ?? 'medium') as Severity;
  if (!SEVERITIES.includes(severity)) fail(`${at}.severity must be one of ${SEVERITIES.join(', ')}`);
  const actions = (b.actions ?? []) as ResponseActionName[];
  if (!Array.isArray(actions) || !actions.every((a) => RESPONSE_ACTIONS.includes(a))) fail(`${at}.actions must be a list of ${RESPONSE_ACTIONS.join(', ')}`);
  const common: BehaviorCommon = {
    name,
    metric,
    severity,
    actions: [...new Set(actions)],
    datapointsToAlarm: count(b.datapointsToAlarm, `${at}.datapointsToAlarm`, 1),
    datapointsToClear: count(b.datapointsToClear, `${at}.datapointsToClear`, 1),
    durationSeconds: b.durationSeconds === undefined ? 0 : count(b.durationSeconds, `${at}.durationSeconds`, 0, 86_400),
    immediate: b.immediate === undefined ? false : flag(b.immediate, `${at}.immediate`),
  };
  if (common.immediate) checkImmediate(b, common, at);
  if (b.baseline !== undefined) {
    if (kind !== 'number') fail(`${at}: a baseline needs a number metric`);
    const base = record(b.baseline, `${at}.baseline`);
    const direction = (base.direction ?? 'above') as (typeof BASELINE_DIRECTIONS)[number];
    if (!BASELINE_DIRECTIONS.includes(direction)) fail(`${at}.baseline.direction must be one of ${BASELINE_DIRECTIONS.join(', ')}`);
    return {
      ...common,
      kind: 'baseline',
      zScore: positive(base.zScore ?? 4, `${at}.baseline.zScore`),
      warmupWindows: count(base.warmupWindows ?? 10, `${at}.baseline.warmupWindows`, 1),
      alpha: fraction(base.alpha ?? 0.1, `${at}.baseline.alpha`),
      minDeviation: positive(base.minDeviation ?? 1, `${at}.baseline.minDeviation`),
      direction,
    };
  }
  const operator = text(b.operator, `${at}.operator`);
  if ((SET_OPERATORS as readonly string[]).includes(operator)) {
    if (kind === 'number' && b.ports === undefined) fail(`${at}: a set operator on a number metric needs ports`);
    const set = valueSet(b, at);
    return { ...common, kind: 'set', operator: operator as SetOperator, set };
  }
  if (!(NUMBER_OPERATORS as readonly string[]).includes(operator)) fail(`${at}.operator must be one of ${[...NUMBER_OPERATORS, ...SET_OPERATORS].join(', ')}`);
  if (kind !== 'number') fail(`${at}: ${operator} needs a number metric; use in / not-in on ${metric}`);
  if (b.statistic !== undefined) {
    const statistic = b.statistic as FleetStatistic;
    if (!FLEET_STATISTICS.includes(statistic)) fail(`${at}.statistic must be one of ${FLEET_STATISTICS.join(', ')}`);
    if (b.value !== undefined) fail(`${at}: give value or statistic, not both`);
    return { ...common, kind: 'number', operator: operator as NumberOperator, threshold: { statistic } };
  }
  if (typeof b.value !== 'number' || !Number.isFinite(b.value)) fail(`${at}.value must be a number (or give statistic: p90, p99...)`);
  return { ...common, kind: 'number', operator: operator as NumberOperator, threshold: { value: b.value } };
}

function checkImmediate(b: Record<string, unknown>, common: BehaviorCommon, at: string): void {
  const counter = (IMMEDIATE_METRICS as readonly string[]).includes(common.metric);
  const staticUpper = (b.operator === 'gt' || b.operator === 'gte') && typeof b.value === 'number' && b.statistic === undefined && b.baseline === undefined;
  if (!counter || !staticUpper || common.datapointsToAlarm !== 1 || common.durationSeconds !== 0) {
    fail(`${at}: immediate needs gt or gte on a static value of ${IMMEDIATE_METRICS.join(', ')}, with one datapoint to alarm`);
  }
}

function flag(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') fail(`${field} must be true or false`);
  return value;
}

function valueSet(b: Record<string, unknown>, at: string): ValueSet {
  const given = (['cidrs', 'ports', 'strings'] as const).filter((k) => b[k] !== undefined);
  if (given.length !== 1) fail(`${at}: a set operator needs exactly one of cidrs, ports, strings`);
  const items = b[given[0] as string];
  if (!Array.isArray(items) || items.length > 1024) fail(`${at}.${given[0] as string} must be a list of at most 1024`);
  const list = items as unknown[];
  if (given[0] === 'strings') {
    if (!list.every((s) => typeof s === 'string' && s.length <= 256)) fail(`${at}.strings must be strings`);
    return stringSet(list as string[]);
  }
  if (given[0] === 'ports') {
    if (!list.every((p) => typeof p === 'number' || typeof p === 'string')) fail(`${at}.ports must be ports or ranges`);
    const set = portSet(list);
    if (typeof set === 'string') fail(`${at}.ports: ${set}`);
    return set;
  }
  if (!list.every((c) => typeof c === 'string')) fail(`${at}.cidrs must be address blocks`);
  const set = cidrSet(list);
  if (typeof set === 'string') fail(`${at}.cidrs: ${set}`);
  return set;
}

function metricKind(metric: string, customKinds: ReadonlyMap<string, MetricKind>): MetricKind | undefined {
  if (isStandardMetric(metric)) return STANDARD_METRICS[metric];
  if (!metric.startsWith('custom.') || !CUSTOM_METRIC_NAME.test(metric.slice(7))) return undefined;
  // A custom metric not (yet) declared by any type is accepted as a number; declared ones keep their kind.
  return customKinds.get(metric.slice(7)) ?? 'number';
}

function fail(message: string): never {
  throw new FleetwardError('FW_ERR_VALIDATION', `security profile: ${message}`);
}
function record(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${at} must be an object`);
  return value as Record<string, unknown>;
}
function text(value: unknown, at: string, max = 64): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) fail(`${at} must be a string of 1 to ${max} characters`);
  return value;
}
function count(value: unknown, at: string, fallback: number, max = 1000): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < Math.min(1, fallback) || value > max) fail(`${at} must be an integer between ${Math.min(1, fallback)} and ${max}`);
  return value;
}
function positive(value: unknown, at: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(`${at} must be a positive number`);
  return value;
}
function fraction(value: unknown, at: string): number {
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) fail(`${at} must be a number above 0, at most 1`);
  return value;
}
