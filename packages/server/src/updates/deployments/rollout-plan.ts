import type { JobReason, JobState } from '@fleetward/protocol';
import { compareHealth, type HealthMetric, type HealthRegression, type HealthSample } from './health-gate.js';
import { minutesOf, type MaintenanceWindow, type PhaseSize, type RolloutSpec } from './spec.js';
import { HEALTH_FAILURE_REASONS, isFinalJob, type DeploymentReason, type DeploymentState } from './states.js';

/**
 * Rollout planning (rule 4), pure: given a deployment's spec, its jobs and the time, decide what
 * the next step does. No I/O and no clock: `Deployments.tick` reads the rows, asks this, and
 * writes the answer in one transaction.
 *
 * What counts as a failure for the abort rule: a released job that ended `failed`, `rejected` by
 * its device (a signature, rollback or hardware refusal means the update cannot land, and a
 * signature refusal may be an attack), or `timed-out` after it had started. A released job that
 * timed out before its device ever started (the device is offline) is stalled, not failed: it is
 * listed, alerted and finished, but a fleet with devices switched off must not abort every rollout.
 * Jobs decided at creation (incompatible, rollback, already up to date) were never released and
 * count for nothing. Cancelled jobs count for nothing either.
 */

export interface PlanJob {
  readonly thing: string;
  /** 0-based phase the job belongs to. */
  readonly phase: number;
  readonly state: JobState;
  readonly reason: JobReason | null;
  /** Epoch ms; null until the rollout hands the job to its device. */
  readonly releasedAt: number | null;
  readonly startedAt: number | null;
  /** Epoch ms of the job's last change (the device's last report, or its release). */
  readonly updatedAt: number;
}

export interface PlanInput {
  readonly spec: RolloutSpec;
  readonly state: DeploymentState;
  readonly jobs: readonly PlanJob[];
  /** Epoch ms. */
  readonly now: number;
  /** Health metrics an operator accepted on resume: they no longer gate this deployment. */
  readonly acknowledged?: readonly HealthMetric[];
  /** Per-thing samples since the deployment started, when a health provider answered. */
  readonly health?: ReadonlyMap<string, HealthSample>;
}

export interface RolloutStats {
  /** Released jobs in a final state other than cancelled. */
  readonly finished: number;
  readonly failures: number;
  readonly failureRate: number;
}

export interface RolloutPlan {
  /** Things whose job the rollout hands out now. */
  readonly release: readonly string[];
  /** Things whose open job has stalled past its timeout. */
  readonly timeOut: readonly string[];
  /** Things whose job ends `cancelled` (the deployment aborted). */
  readonly cancel: readonly string[];
  /** The deployment's next state. */
  readonly state: DeploymentState;
  readonly reason: DeploymentReason | null;
  /** The lowest phase with an open job; null when every job is final. */
  readonly phase: number | null;
  /** Whether this plan releases the first jobs of `phase`. */
  readonly phaseStarted: boolean;
  readonly stats: RolloutStats;
  readonly regressions: readonly HealthRegression[];
}

const MINUTE_MS = 60_000;

export function planRollout(input: PlanInput): RolloutPlan {
  const { spec, now } = input;
  const timedOut = stalledJobs(input.jobs, spec, now);
  const timeOut = new Set(timedOut.map((j) => j.thing));
  // The rest of the plan sees the jobs as they will be once the timeouts are written.
  const jobs = input.jobs.map((j) => (timeOut.has(j.thing) ? { ...j, state: 'timed-out' as const, reason: 'timed-out' as const } : j));
  const stats = rolloutStats(jobs);
  const base = { timeOut: timedOut.map((j) => j.thing), stats, phase: currentPhase(jobs) };
  const stay = { ...base, release: [], cancel: [], state: input.state, reason: null, phaseStarted: false, regressions: [] };

  if (input.state !== 'running' && input.state !== 'paused') return stay;
  if (stats.finished >= spec.abort.minDevices && stats.failureRate > spec.abort.failureRate) {
    return { ...stay, state: 'aborted', reason: 'failure-rate', cancel: cancellable(jobs) };
  }
  if (input.state === 'paused') return stay;

  const acknowledged = new Set(input.acknowledged ?? []);
  const regressions = compareHealth(healthInput(jobs, input.health), spec.health).filter((r) => !acknowledged.has(r.metric));
  if (regressions.length > 0) {
    return spec.health.action === 'abort'
      ? { ...stay, state: 'aborted', reason: 'health-regression', cancel: cancellable(jobs), regressions }
      : { ...stay, state: 'paused', reason: 'health-regression', regressions };
  }
  if (base.phase === null) return { ...stay, state: 'completed' };

  const phase = base.phase;
  const inPhase = jobs.filter((j) => j.phase === phase);
  const waiting = inPhase.filter((j) => j.releasedAt === null && j.state === 'queued');
  let allowance = waiting.length;
  if (spec.maintenanceWindow !== null && !inWindow(spec.maintenanceWindow, now)) allowance = 0;
  if (spec.ratePerMinute !== null) {
    const recent = jobs.filter((j) => j.releasedAt !== null && j.releasedAt > now - MINUTE_MS && j.releasedAt <= now).length;
    allowance = Math.min(allowance, Math.max(0, spec.ratePerMinute - recent));
  }
  const release = waiting
    .map((j) => j.thing)
    .sort()
    .slice(0, allowance);
  return { ...stay, release, phaseStarted: release.length > 0 && inPhase.every((j) => j.releasedAt === null) };
}

/** Open released jobs past their timeout: in progress too long, or never started by their device. */
export function stalledJobs(jobs: readonly PlanJob[], spec: RolloutSpec, now: number): PlanJob[] {
  return jobs.filter((j) => {
    if (j.releasedAt === null || isFinalJob(j.state)) return false;
    if (j.state === 'in-progress') return now - (j.startedAt ?? j.releasedAt) >= spec.timeoutSeconds * 1000;
    return now - Math.max(j.releasedAt, j.updatedAt) >= spec.startTimeoutSeconds * 1000;
  });
}

export function rolloutStats(jobs: readonly PlanJob[]): RolloutStats {
  let finished = 0;
  let failures = 0;
  for (const job of jobs) {
    if (job.releasedAt === null || !isFinalJob(job.state) || job.state === 'cancelled') continue;
    finished++;
    if (isFailure(job)) failures++;
  }
  return { finished, failures, failureRate: finished === 0 ? 0 : failures / finished };
}

/** Whether a finished, released job counts against the abort rule (see the module comment). */
export function isFailure(job: PlanJob): boolean {
  switch (job.state) {
    case 'failed':
    case 'rejected':
      return true;
    case 'timed-out':
      return job.startedAt !== null;
    case 'queued':
    case 'in-progress':
    case 'succeeded':
    case 'cancelled':
      return false;
    default: {
      const unexpected: never = job.state;
      throw new Error(`unknown job state ${String(unexpected)}`);
    }
  }
}

/** Jobs that stop when a deployment stops: not released yet, or released but not started. In-progress installs finish. */
export function cancellable(jobs: readonly PlanJob[]): string[] {
  return jobs.filter((j) => j.state === 'queued').map((j) => j.thing);
}

export function currentPhase(jobs: readonly PlanJob[]): number | null {
  let phase: number | null = null;
  for (const job of jobs) if (!isFinalJob(job.state) && (phase === null || job.phase < phase)) phase = job.phase;
  return phase;
}

/**
 * How many devices each phase holds, for `total` devices. Phases are cumulative (`10,25%,100%`:
 * the first 10, then up to a quarter, then all); a percentage rounds up, so a phase is never
 * empty; phases that add nothing are dropped and the devices left after the last go in a final
 * phase. Exponential: the first phase's size, then each phase doubles.
 */
export function phaseSizes(total: number, spec: Pick<RolloutSpec, 'phases' | 'exponential'>): number[] {
  if (total <= 0) return [];
  const resolve = (p: PhaseSize) => Math.min(total, p.kind === 'count' ? p.count : Math.ceil((total * p.percent) / 100));
  const sizes: number[] = [];
  if (spec.exponential) {
    let size = Math.max(1, resolve(spec.phases[0] ?? { kind: 'count', count: 1 }));
    for (let placed = 0; placed < total; size *= 2) {
      const next = Math.min(size, total - placed);
      sizes.push(next);
      placed += next;
    }
    return sizes;
  }
  let placed = 0;
  for (const phase of spec.phases) {
    const target = resolve(phase);
    if (target > placed) {
      sizes.push(target - placed);
      placed = target;
    }
  }
  if (placed < total) sizes.push(total - placed);
  return sizes;
}

/** Phase numbers for devices in rollout order (the first devices go first). */
export function assignPhases(count: number, spec: Pick<RolloutSpec, 'phases' | 'exponential'>): number[] {
  const phases: number[] = [];
  phaseSizes(count, spec).forEach((size, phase) => {
    for (let i = 0; i < size; i++) phases.push(phase);
  });
  return phases;
}

/** Whether `now` falls in a daily UTC window (start inclusive, end exclusive; spans midnight when end < start). */
export function inWindow(window: MaintenanceWindow, now: number): boolean {
  const date = new Date(now);
  const minute = date.getUTCHours() * 60 + date.getUTCMinutes();
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  return start < end ? minute >= start && minute < end : minute >= start || minute < end;
}

function healthInput(jobs: readonly PlanJob[], samples: ReadonlyMap<string, HealthSample> | undefined) {
  const updated: HealthSample[] = [];
  const baseline: HealthSample[] = [];
  let finished = 0;
  let failed = 0;
  for (const job of jobs) {
    const sample = samples?.get(job.thing);
    if (job.releasedAt === null) {
      if (job.state === 'queued' && sample) baseline.push(sample);
      continue;
    }
    if (job.state === 'succeeded' && sample) updated.push(sample);
    if (isFinalJob(job.state) && job.state !== 'cancelled') {
      finished++;
      if (job.state === 'failed' && job.reason !== null && HEALTH_FAILURE_REASONS.includes(job.reason)) failed++;
    }
  }
  return { updated, baseline, confirmations: { finished, failed } };
}
