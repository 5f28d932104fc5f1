import { FleetwardError } from '@fleetward/protocol';
import { DEFAULT_HEALTH_THRESHOLDS, type HealthGate, type HealthMetric } from './health-gate.js';

/**
 * A deployment's rollout settings: parsed at the boundary from an operator's request into a
 * read-only spec (stored as JSON in `deployments.spec`), with every limit named and defaulted.
 */

/** A phase's cumulative size: a device count, or a percentage of the deployment's devices. */
export type PhaseSize = { readonly kind: 'count'; readonly count: number } | { readonly kind: 'percent'; readonly percent: number };

export interface MaintenanceWindow {
  /** `HH:MM`, UTC. A window whose end is before its start spans midnight. */
  readonly start: string;
  readonly end: string;
}

export interface Selection {
  readonly things?: readonly string[];
  readonly groups?: readonly string[];
  readonly query?: { readonly thingType?: string; readonly attributes?: Readonly<Record<string, string>> };
}

export interface AbortRule {
  /** Abort when failures / finished devices is above this (0 to 1). */
  readonly failureRate: number;
  /** ... but only once at least this many released devices finished. */
  readonly minDevices: number;
}

/** What an operator asks for (API body, CLI flags), before validation. */
export interface DeploymentRequest {
  readonly target: string;
  readonly selection: Selection;
  /** `10`, `25%`, `100%`: cumulative sizes; with `exponential`, only the first phase's size. */
  readonly phases?: readonly string[];
  readonly ratePerMinute?: number;
  readonly exponential?: boolean;
  readonly abort?: Partial<AbortRule>;
  /** How long a device may stay in progress before its job is timed out (stalled). */
  readonly timeoutSeconds?: number;
  /** How long a released job may wait for its device to start before it is timed out. */
  readonly startTimeoutSeconds?: number;
  readonly maintenanceWindow?: MaintenanceWindow;
  readonly health?: Partial<HealthGate>;
}

/** The validated rollout, as the planner reads it. */
export interface RolloutSpec {
  readonly phases: readonly PhaseSize[];
  readonly ratePerMinute: number | null;
  readonly exponential: boolean;
  readonly abort: AbortRule;
  readonly timeoutSeconds: number;
  readonly startTimeoutSeconds: number;
  readonly maintenanceWindow: MaintenanceWindow | null;
  readonly health: HealthGate;
}

/** What `deployments.spec` holds: the rollout, the selection as asked, and the artifact as deployed. */
export interface StoredSpec extends RolloutSpec {
  readonly v: 1;
  readonly selection: Selection;
  readonly version: string;
  readonly securityVersion: number;
  /** Health metrics an operator accepted when resuming a paused deployment: they no longer gate it. */
  readonly acknowledged: readonly HealthMetric[];
  /** The metrics that last paused it (accepted on resume). */
  readonly regressed?: readonly HealthMetric[];
}

export const DEPLOYMENT_LIMITS = {
  maxPhases: 20,
  maxPhaseCount: 1_000_000,
  maxRatePerMinute: 100_000,
  minTimeoutSeconds: 60,
  maxTimeoutSeconds: 30 * 86_400,
  maxSelectionNames: 10_000,
  /** Devices one deployment may address. */
  maxDevices: 200_000,
} as const;

export const DEFAULT_ROLLOUT = {
  phases: ['5%', '25%', '100%'],
  abort: { failureRate: 0.1, minDevices: 5 },
  timeoutSeconds: 3600,
  startTimeoutSeconds: 7 * 86_400,
} as const;

const PHASE = /^(\d{1,7})$|^(\d{1,3}(?:\.\d{1,2})?)%$/;
const CLOCK_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

export function parsePhase(text: string): PhaseSize {
  const match = PHASE.exec(text.trim());
  if (!match) throw invalid('phases', `phase ${JSON.stringify(text)} is not a device count (10) or a percentage (25%)`);
  if (match[1] !== undefined) {
    const count = Number(match[1]);
    if (count < 1 || count > DEPLOYMENT_LIMITS.maxPhaseCount) throw invalid('phases', `a phase has 1 to ${DEPLOYMENT_LIMITS.maxPhaseCount} devices`);
    return { kind: 'count', count };
  }
  const percent = Number(match[2]);
  if (!(percent > 0 && percent <= 100)) throw invalid('phases', 'a phase percentage is above 0 and at most 100');
  return { kind: 'percent', percent };
}

/** Phases as cumulative sizes: each count and each percentage above the previous one of its kind. */
export function parsePhases(texts: readonly string[], exponential: boolean): PhaseSize[] {
  if (texts.length === 0 || texts.length > DEPLOYMENT_LIMITS.maxPhases) throw invalid('phases', `a rollout has 1 to ${DEPLOYMENT_LIMITS.maxPhases} phases`);
  if (exponential && texts.length !== 1) throw invalid('phases', 'an exponential rollout takes one phase: the size of the first (each next phase doubles)');
  const phases = texts.map(parsePhase);
  let count = 0;
  let percent = 0;
  for (const phase of phases) {
    if (phase.kind === 'count') {
      if (phase.count <= count) throw invalid('phases', 'phases are cumulative: each count must be above the previous one');
      count = phase.count;
    } else {
      if (phase.percent <= percent) throw invalid('phases', 'phases are cumulative: each percentage must be above the previous one');
      percent = phase.percent;
    }
  }
  return phases;
}

export function parseWindow(window: MaintenanceWindow): MaintenanceWindow {
  if (!CLOCK_TIME.test(window.start) || !CLOCK_TIME.test(window.end)) throw invalid('maintenanceWindow', 'a maintenance window is HH:MM-HH:MM in UTC');
  if (window.start === window.end) throw invalid('maintenanceWindow', 'a maintenance window cannot start and end at the same time');
  return { start: window.start, end: window.end };
}

/** Minutes after midnight UTC of an `HH:MM`. */
export function minutesOf(time: string): number {
  const [h, m] = time.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

export function checkSelection(selection: Selection): Selection {
  const things = selection.things ?? [];
  const groups = selection.groups ?? [];
  const query = selection.query;
  const hasQuery = query !== undefined && (query.thingType !== undefined || Object.keys(query.attributes ?? {}).length > 0);
  if (things.length === 0 && groups.length === 0 && !hasQuery) throw invalid('selection', 'a deployment selects things, groups or a query');
  if (things.length + groups.length > DEPLOYMENT_LIMITS.maxSelectionNames) throw invalid('selection', `a selection names at most ${DEPLOYMENT_LIMITS.maxSelectionNames} things and groups`);
  return {
    ...(things.length > 0 && { things: [...new Set(things)] }),
    ...(groups.length > 0 && { groups: [...new Set(groups)] }),
    ...(hasQuery && { query: { ...(query.thingType !== undefined && { thingType: query.thingType }), ...(query.attributes !== undefined && { attributes: { ...query.attributes } }) } }),
  };
}

/** Validates the rollout part of a request, filling defaults. */
export function rolloutSpec(request: Omit<DeploymentRequest, 'target' | 'selection'>): RolloutSpec {
  const exponential = request.exponential === true;
  const phases = parsePhases(request.phases ?? (exponential ? ['1'] : DEFAULT_ROLLOUT.phases), exponential);
  const rate = request.ratePerMinute;
  if (rate !== undefined && (!Number.isInteger(rate) || rate < 1 || rate > DEPLOYMENT_LIMITS.maxRatePerMinute)) throw invalid('ratePerMinute', `a rate is 1 to ${DEPLOYMENT_LIMITS.maxRatePerMinute} devices per minute`);
  const failureRate = request.abort?.failureRate ?? DEFAULT_ROLLOUT.abort.failureRate;
  if (!(Number.isFinite(failureRate) && failureRate >= 0 && failureRate <= 1)) throw invalid('abort.failureRate', 'an abort failure rate is between 0 and 1');
  const minDevices = request.abort?.minDevices ?? DEFAULT_ROLLOUT.abort.minDevices;
  if (!Number.isInteger(minDevices) || minDevices < 1 || minDevices > DEPLOYMENT_LIMITS.maxPhaseCount) throw invalid('abort.minDevices', 'abort.minDevices is a whole number of devices, at least 1');
  const timeoutSeconds = seconds(request.timeoutSeconds ?? DEFAULT_ROLLOUT.timeoutSeconds, 'timeoutSeconds');
  const startTimeoutSeconds = seconds(request.startTimeoutSeconds ?? DEFAULT_ROLLOUT.startTimeoutSeconds, 'startTimeoutSeconds');
  return {
    phases,
    ratePerMinute: rate ?? null,
    exponential,
    abort: { failureRate, minDevices },
    timeoutSeconds,
    startTimeoutSeconds,
    maintenanceWindow: request.maintenanceWindow === undefined ? null : parseWindow(request.maintenanceWindow),
    health: healthGate(request.health ?? {}),
  };
}

function healthGate(request: Partial<HealthGate>): HealthGate {
  const gate = { ...DEFAULT_HEALTH_THRESHOLDS, ...request };
  if (!['off', 'pause', 'abort'].includes(gate.action)) throw invalid('health.action', 'health.action is off, pause or abort');
  if (!Number.isInteger(gate.minCohort) || gate.minCohort < 1 || gate.minCohort > 100_000) throw invalid('health.minCohort', 'health.minCohort is a whole number of devices, at least 1');
  if (!(Number.isFinite(gate.ratio) && gate.ratio >= 1 && gate.ratio <= 100)) throw invalid('health.ratio', 'health.ratio is between 1 and 100');
  for (const key of ['authFailuresMargin', 'listeningPortsMargin', 'rebootsMargin', 'confirmFailureRate'] as const) {
    if (!(Number.isFinite(gate[key]) && gate[key] >= 0 && gate[key] <= 1000)) throw invalid(`health.${key}`, `health.${key} is a number from 0`);
  }
  if (gate.confirmFailureRate > 1) throw invalid('health.confirmFailureRate', 'health.confirmFailureRate is between 0 and 1');
  return gate;
}

function seconds(value: number, field: string): number {
  if (!Number.isInteger(value) || value < DEPLOYMENT_LIMITS.minTimeoutSeconds || value > DEPLOYMENT_LIMITS.maxTimeoutSeconds) {
    throw invalid(field, `${field} is ${DEPLOYMENT_LIMITS.minTimeoutSeconds} to ${DEPLOYMENT_LIMITS.maxTimeoutSeconds} seconds`);
  }
  return value;
}

function invalid(field: string, message: string): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', message, { field });
}
