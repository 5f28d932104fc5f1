import { FINAL_JOB_STATES, FleetwardError, type JobReason, type JobState, type JobUpdate, type ReportedJobState } from '@fleetward/protocol';

/**
 * The two state machines of a deployment (rule 4), each as one transition table: the deployment's
 * own (what the rollout does) and a job's as its device may move it. "Active" and "final" are
 * derived from the tables, never listed twice.
 */

export const DEPLOYMENT_STATES = ['running', 'paused', 'completed', 'aborted', 'cancelled'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

const DEPLOYMENT_TRANSITIONS: Readonly<Record<DeploymentState, readonly DeploymentState[]>> = {
  running: ['paused', 'completed', 'aborted', 'cancelled'],
  paused: ['running', 'aborted', 'cancelled'],
  completed: [],
  aborted: [],
  cancelled: [],
};

export function canTransitionDeployment(from: DeploymentState, to: DeploymentState): boolean {
  return DEPLOYMENT_TRANSITIONS[from].includes(to);
}

export function isFinalDeployment(state: DeploymentState): boolean {
  return DEPLOYMENT_TRANSITIONS[state].length === 0;
}

export const ACTIVE_DEPLOYMENT_STATES: readonly DeploymentState[] = DEPLOYMENT_STATES.filter((s) => !isFinalDeployment(s));

export function isDeploymentState(value: string): value is DeploymentState {
  return (DEPLOYMENT_STATES as readonly string[]).includes(value);
}

/** Why a deployment stopped or waits (the `reason` column). */
export type DeploymentReason = 'failure-rate' | 'health-regression' | 'operator';

export function isFinalJob(state: JobState): boolean {
  return FINAL_JOB_STATES.includes(state);
}

/** What a device may report from each open state; final states accept nothing (FW_ERR_CONFLICT). */
const JOB_TRANSITIONS: Readonly<Record<'queued' | 'in-progress', readonly ReportedJobState[]>> = {
  // A device that already runs the version may report `succeeded` straight away.
  queued: ['queued', 'in-progress', 'succeeded', 'failed', 'rejected'],
  // Once installing, a device cannot go back to waiting: it finishes, fails or refuses.
  'in-progress': ['in-progress', 'succeeded', 'failed', 'rejected'],
};

/** Reasons each reported state may carry (protocol/messages/jobs.ts). */
const REASONS_BY_STATE: Readonly<Record<ReportedJobState, readonly JobReason[]>> = {
  queued: ['maintenance-window', 'battery-low'],
  'in-progress': [],
  succeeded: [],
  failed: ['not-found', 'download-failed', 'too-large', 'install-failed', 'boot-failed', 'health-check-failed', 'other'],
  rejected: ['signature', 'rollback', 'incompatible', 'too-large'],
};

/** Failed reasons that say the new image did not come up healthy (health gating counts them). */
export const HEALTH_FAILURE_REASONS: readonly JobReason[] = ['boot-failed', 'health-check-failed'];

/**
 * Checks a device's report against its job's current state. Throws FW_ERR_CONFLICT for a job
 * already final or a transition the table does not allow, FW_ERR_VALIDATION for a reason, step
 * or byte count that does not fit the reported state.
 */
export function checkJobReport(current: JobState, update: JobUpdate): void {
  if (current !== 'queued' && current !== 'in-progress') {
    throw new FleetwardError('FW_ERR_CONFLICT', `the job is ${current}; a final job takes no more reports`, { state: current });
  }
  if (!JOB_TRANSITIONS[current].includes(update.state)) {
    throw new FleetwardError('FW_ERR_CONFLICT', `a job cannot go from ${current} to ${update.state}`, { from: current, to: update.state });
  }
  if (update.reason !== undefined && !REASONS_BY_STATE[update.state].includes(update.reason)) {
    throw new FleetwardError('FW_ERR_VALIDATION', `a ${update.state} report cannot give reason ${update.reason}`, { field: 'reason' });
  }
  if ((update.state === 'failed' || update.state === 'rejected') && update.reason === undefined) {
    throw new FleetwardError('FW_ERR_VALIDATION', `a ${update.state} report must give a reason`, { field: 'reason' });
  }
  if (update.step !== undefined && update.state !== 'in-progress') {
    throw new FleetwardError('FW_ERR_VALIDATION', 'only an in-progress report names a step', { field: 'step' });
  }
  if (update.bytes !== undefined && update.totalBytes !== undefined && update.bytes > update.totalBytes) {
    throw new FleetwardError('FW_ERR_VALIDATION', 'bytes cannot exceed totalBytes', { field: 'bytes' });
  }
}
