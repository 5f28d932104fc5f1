import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import { UPDATES_ACTOR, type RaiseAlert } from './types.js';

/**
 * Raises update alerts: each is an audit event (`updates.alert`, outcome failure, so the trail and
 * any exporter see it), a metric by kind (for alerting rules on the metrics endpoint) and a warning
 * in the log.
 */
export function updateAlerts(deps: { readonly audit: AuditLog; readonly logger: Logger; readonly metrics: Pick<NodeMetrics, 'updateAlerts'> }): RaiseAlert {
  return async (alert) => {
    deps.metrics.updateAlerts.inc({ kind: alert.kind });
    deps.logger.warn({ alert: alert.kind, deployment: alert.deployment, thing: alert.thing }, alert.message);
    await deps.audit.record({
      actor: UPDATES_ACTOR.name,
      action: 'updates.alert',
      outcome: 'failure',
      ...(alert.thing !== undefined ? { target: `thing:${alert.thing}` } : alert.deployment !== undefined ? { target: `deployment:${alert.deployment}` } : {}),
      details: { kind: alert.kind, message: alert.message, ...(alert.deployment !== undefined && { deployment: alert.deployment }), ...alert.details },
    });
  };
}
