import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { KeyRing } from '../../identity/key-ring.js';
import type { Job } from '../../jobs/scheduler.js';
import type { Store } from '../../store/store.js';
import type { RaiseAlert, UpdateAlertKind } from '../../updates/types.js';
import type { Detection, DetectionSink, ResponseActionName, Severity } from '../types.js';
import { Alerts, type Alert, type TimelineEntry } from './alerts.js';
import type { WebhookPost } from '../../webhooks/https-webhook.js';
import { Notifier, type Delivery, type OperatorPublish } from './notifier.js';
import { ResponseActions, type ResponseAction, type ResponseCertificates, type ResponseDeployments, type ResponseThings } from './response-actions.js';
import { Suppressions } from './suppressions.js';

export interface AlertServicesDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly keyRing: KeyRing;
  readonly things: ResponseThings;
  readonly certificates: ResponseCertificates;
  readonly deployments: ResponseDeployments;
  /** Publishes as the server on the node's broker (operators' `$fw/alerts/{severity}`); a no-op where no broker runs (CLI on the data folder). */
  readonly publish: OperatorPublish;
  /** Automatic actions of these kinds wait for an operator's approval. */
  readonly approvalRequired?: readonly ResponseActionName[];
  readonly automaticQuarantineSeconds?: number;
  /** Replaces the HTTPS client (tests of failure paths). */
  readonly post?: WebhookPost;
}

/** An incident: the alert, its timeline, the actions run for it, and its notifications. */
export interface Incident {
  readonly alert: Alert;
  readonly timeline: readonly TimelineEntry[];
  readonly actions: readonly ResponseAction[];
  readonly deliveries: readonly Delivery[];
}

/** What became of a detection. */
export type DetectionOutcome =
  | { readonly kind: 'opened' | 'bumped'; readonly alert: Alert; readonly actions: readonly ResponseAction[] }
  | { readonly kind: 'suppressed'; readonly suppression: string };

/**
 * Rule 5's response side: the detection sink (dedupe, suppress, alert, act automatically) and the
 * services behind the alerts, respond and notify commands.
 */
export class AlertServices implements DetectionSink {
  readonly alerts: Alerts;
  readonly suppressions: Suppressions;
  readonly notifier: Notifier;
  readonly response: ResponseActions;
  readonly #deps: AlertServicesDependencies;

  constructor(deps: AlertServicesDependencies) {
    this.#deps = deps;
    const { store, audit, clock, keyRing } = deps;
    this.alerts = new Alerts({ store, audit, clock });
    this.suppressions = new Suppressions({ store, audit, clock });
    this.notifier = new Notifier({ store, audit, clock, keyRing, alerts: this.alerts, publish: deps.publish, ...(deps.post && { post: deps.post }) });
    this.response = new ResponseActions({
      store,
      audit,
      clock,
      alerts: this.alerts,
      notifier: this.notifier,
      things: deps.things,
      certificates: deps.certificates,
      deployments: deps.deployments,
      ...(deps.approvalRequired && { approvalRequired: deps.approvalRequired }),
      ...(deps.automaticQuarantineSeconds !== undefined && { automaticQuarantineSeconds: deps.automaticQuarantineSeconds }),
    });
  }

  /** DetectionSink: the actions of a newly opened alert have run (or wait for approval) when this resolves. */
  async detected(detection: Detection): Promise<void> {
    await this.ingest(detection);
  }

  async ingest(detection: Detection): Promise<DetectionOutcome> {
    const groups = await this.#deps.things.get(detection.thing).then(
      (t) => t.groups,
      () => [] as readonly string[],
    );
    const suppression = await this.suppressions.consume(detection, groups, this.#deps.clock.now());
    if (suppression !== null) return { kind: 'suppressed', suppression: suppression.id };
    const recorded = await this.alerts.record(detection);
    if (recorded.kind === 'bumped') return { ...recorded, actions: [] };
    this.notifier.publishAlert(recorded.alert, 'opened');
    const actions = await this.response.automatic(recorded.alert, detection.actions);
    return { kind: 'opened', alert: await this.alerts.get(recorded.alert.id), actions };
  }

  async incident(id: string): Promise<Incident> {
    const alert = await this.alerts.get(id);
    const [timeline, actions, deliveries] = await Promise.all([this.alerts.timeline(id), this.response.list({ alert: id }), this.notifier.deliveries({ alert: id })]);
    return { alert, timeline, actions, deliveries };
  }

  /** Background work for the node's scheduler: quarantine expiry and webhook retries. */
  jobs(intervals: { readonly expiryMs?: number; readonly retryMs?: number } = {}): Job[] {
    const { clock } = this.#deps;
    return [
      { name: 'response-quarantine-expiry', everyMs: intervals.expiryMs ?? 5000, run: () => this.response.tick(clock.now()) },
      { name: 'notify-webhook-retries', everyMs: intervals.retryMs ?? 1000, run: () => this.notifier.tick(clock.now()) },
    ];
  }
}

const UPDATE_ALERT_SEVERITY: Readonly<Record<UpdateAlertKind, Severity>> = {
  'deployment-aborted': 'high',
  'deployment-paused': 'medium',
  'job-timed-out': 'medium',
  'security-update-blocked': 'high',
  'unauthorized-firmware': 'high',
  'cannot-update': 'medium',
};

/**
 * Rule 4's alerts as rule 5 alerts (behaviour `updates.<kind>`, deduped per kind, deployment and
 * thing). Compose it with `updateAlerts(...)` to keep the audit event, metric and log line too.
 */
export function updateAlertsToAlerts(services: Pick<AlertServices, 'alerts' | 'notifier'>, clock: Clock): RaiseAlert {
  return async (alert) => {
    const recorded = await services.alerts.record({
      thing: alert.thing ?? null,
      behavior: `updates.${alert.kind}`,
      profile: null,
      severity: UPDATE_ALERT_SEVERITY[alert.kind],
      metric: alert.kind,
      value: { ...(alert.deployment !== undefined && { deployment: alert.deployment }), ...alert.details },
      message: alert.message,
      at: clock.now().toISOString(),
      dedupeKey: `updates:${alert.kind}:${alert.deployment ?? '-'}:${alert.thing ?? '-'}`,
      actions: [],
    });
    if (recorded.kind === 'opened') services.notifier.publishAlert(recorded.alert, 'opened');
  };
}

/** Several RaiseAlert functions as one (each runs; the first failure is rethrown after all ran). */
export function allOf(...raisers: readonly RaiseAlert[]): RaiseAlert {
  return async (alert) => {
    const results = await Promise.allSettled(raisers.map((raise) => raise(alert)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
}

