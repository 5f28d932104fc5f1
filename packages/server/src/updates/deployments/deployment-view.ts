import { JOB_STATES, type JobReason, type JobState, type JobStep } from '@fleetward/protocol';
import type { DeploymentJobsTable, DeploymentsTable } from '../../store/tables.js';
import type { HealthGate, HealthMetric } from './health-gate.js';
import type { PlanJob } from './rollout-plan.js';
import type { MaintenanceWindow, PhaseSize, Selection, StoredSpec } from './spec.js';
import type { DeploymentState } from './states.js';

/** Jobs per state; `notReleased` counts the queued jobs whose phase has not reached them yet. */
export type JobCounts = Readonly<Record<JobState, number>> & { readonly notReleased: number; readonly total: number };

export interface PhaseProgress {
  readonly phase: number;
  readonly size: number;
  readonly counts: JobCounts;
}

/** The rollout as an operator wrote it (phases as `10` / `25%`). */
export interface RolloutView {
  readonly phases: readonly string[];
  readonly ratePerMinute: number | null;
  readonly exponential: boolean;
  readonly abort: { readonly failureRate: number; readonly minDevices: number };
  readonly timeoutSeconds: number;
  readonly startTimeoutSeconds: number;
  readonly maintenanceWindow: MaintenanceWindow | null;
  readonly health: HealthGate;
}

export interface Deployment {
  /** Also the job id devices see. */
  readonly id: string;
  readonly target: string;
  readonly version: string;
  readonly securityVersion: number;
  readonly state: DeploymentState;
  /** Why it stopped or waits: failure-rate, health-regression, operator. */
  readonly reason: string | null;
  /** Created by automatic security updates. */
  readonly automatic: boolean;
  readonly selection: Selection;
  readonly rollout: RolloutView;
  /** Health metrics an operator accepted on resume. */
  readonly acknowledged: readonly HealthMetric[];
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
  readonly phaseStartedAt: string | null;
  /** The lowest phase with an open job; null when all are final. */
  readonly currentPhase: number | null;
  readonly counts: JobCounts;
  readonly phases: readonly PhaseProgress[];
}

export interface DeploymentJob {
  readonly deploymentId: string;
  readonly thing: string;
  readonly phase: number;
  readonly state: JobState;
  readonly step: JobStep | null;
  readonly reason: JobReason | null;
  readonly message: string | null;
  readonly bytes: number | null;
  readonly totalBytes: number | null;
  readonly releasedAt: string | null;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly updatedAt: string;
}

export function formatPhase(phase: PhaseSize): string {
  return phase.kind === 'count' ? String(phase.count) : `${phase.percent}%`;
}

export function emptyCounts(): { -readonly [K in keyof JobCounts]: number } {
  return { ...(Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>), notReleased: 0, total: 0 };
}

export function parseSpec(text: string): StoredSpec {
  return JSON.parse(text) as StoredSpec;
}

export function rolloutView(spec: StoredSpec): RolloutView {
  return {
    phases: spec.phases.map(formatPhase),
    ratePerMinute: spec.ratePerMinute,
    exponential: spec.exponential,
    abort: spec.abort,
    timeoutSeconds: spec.timeoutSeconds,
    startTimeoutSeconds: spec.startTimeoutSeconds,
    maintenanceWindow: spec.maintenanceWindow,
    health: spec.health,
  };
}

export function deploymentOf(row: DeploymentsTable, counts: JobCounts, phases: readonly PhaseProgress[], currentPhase: number | null): Deployment {
  const spec = parseSpec(row.spec);
  return {
    id: row.id,
    target: row.target,
    version: spec.version,
    securityVersion: spec.securityVersion,
    state: row.state as DeploymentState,
    reason: row.reason,
    automatic: row.automatic === 1,
    selection: spec.selection,
    rollout: rolloutView(spec),
    acknowledged: spec.acknowledged,
    createdAt: row.created_at,
    createdBy: row.created_by,
    updatedAt: row.updated_at,
    phaseStartedAt: row.phase_started_at,
    currentPhase,
    counts,
    phases,
  };
}

export function jobOf(row: DeploymentJobsTable): DeploymentJob {
  return {
    deploymentId: row.deployment_id,
    thing: row.thing,
    phase: row.phase,
    state: row.state as JobState,
    step: row.step as JobStep | null,
    reason: row.reason as JobReason | null,
    message: row.message,
    bytes: row.bytes === null ? null : Number(row.bytes),
    totalBytes: row.total_bytes === null ? null : Number(row.total_bytes),
    releasedAt: row.released_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
  };
}

export function planJobOf(row: Pick<DeploymentJobsTable, 'thing' | 'phase' | 'state' | 'reason' | 'released_at' | 'started_at' | 'updated_at'>): PlanJob {
  return {
    thing: row.thing,
    phase: row.phase,
    state: row.state as JobState,
    reason: row.reason as JobReason | null,
    releasedAt: row.released_at === null ? null : Date.parse(row.released_at),
    startedAt: row.started_at === null ? null : Date.parse(row.started_at),
    updatedAt: Date.parse(row.updated_at),
  };
}

