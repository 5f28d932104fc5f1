import { SEVERITIES, type Severity } from '../types.js';

/**
 * An alert's lifecycle, as one transition table: open → acknowledged → resolved (an open alert
 * may be resolved directly). Resolved is final: a later detection with the same key opens a new alert.
 */
export const ALERT_STATES = ['open', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

const TRANSITIONS: Readonly<Record<AlertState, readonly AlertState[]>> = {
  open: ['acknowledged', 'resolved'],
  acknowledged: ['resolved'],
  resolved: [],
};

export function canTransitionAlert(from: AlertState, to: AlertState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function allowedAlertTransitions(from: AlertState): readonly AlertState[] {
  return TRANSITIONS[from];
}

/** Whether detections with the alert's key still bump it (derived from the table: not final). */
export function isActiveAlert(state: AlertState): boolean {
  return TRANSITIONS[state].length > 0;
}

export const ACTIVE_ALERT_STATES: readonly AlertState[] = ALERT_STATES.filter(isActiveAlert);

export function isAlertState(value: unknown): value is AlertState {
  return typeof value === 'string' && (ALERT_STATES as readonly string[]).includes(value);
}

/** What an operator concluded about an alert. */
export const VERDICTS = ['true-positive', 'benign', 'false-positive'] as const;
export type Verdict = (typeof VERDICTS)[number];

export function isVerdict(value: unknown): value is Verdict {
  return typeof value === 'string' && (VERDICTS as readonly string[]).includes(value);
}

export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value);
}

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** The higher of two severities (a bump never lowers an alert's severity). */
export function maxSeverity(a: Severity, b: Severity): Severity {
  return severityRank(a) >= severityRank(b) ? a : b;
}

/**
 * A response action's lifecycle: it waits for approval (automatic actions of kinds that need it),
 * then runs and succeeds or fails; a waiting action may be rejected.
 */
export const ACTION_STATES = ['pending-approval', 'succeeded', 'failed', 'rejected'] as const;
export type ActionState = (typeof ACTION_STATES)[number];

const ACTION_TRANSITIONS: Readonly<Record<ActionState, readonly ActionState[]>> = {
  'pending-approval': ['succeeded', 'failed', 'rejected'],
  succeeded: [],
  failed: [],
  rejected: [],
};

export function canTransitionAction(from: ActionState, to: ActionState): boolean {
  return ACTION_TRANSITIONS[from].includes(to);
}

export const TIMELINE_KINDS = ['detection', 'action', 'note', 'state', 'verdict', 'notification'] as const;
export type TimelineKind = (typeof TIMELINE_KINDS)[number];
