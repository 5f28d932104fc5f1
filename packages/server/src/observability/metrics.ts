import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The node's Prometheus metrics, in a registry of its own so several nodes can share a process. */
export interface NodeMetrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  /** Every error answer, by stable error code: bad input, refusals, failures. */
  readonly problems: Counter<'code'>;
  readonly authFailures: Counter<'reason'>;
  readonly authThrottled: Counter;
  readonly auditEvents: Counter;
  /** Open credential audit findings, by severity. */
  readonly credentialFindings: Gauge<'severity'>;
  /** Background job runs that failed, by job. */
  readonly jobFailures: Counter<'job'>;
}

export function createMetrics(): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fleetward_' });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({ name: 'fleetward_http_requests_total', help: 'API requests answered, by route and status', labelNames: ['method', 'route', 'status'], registers }),
    httpDuration: new Histogram({
      name: 'fleetward_http_request_duration_seconds',
      help: 'API request latency',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    problems: new Counter({ name: 'fleetward_api_problems_total', help: 'API error answers by stable error code', labelNames: ['code'], registers }),
    authFailures: new Counter({ name: 'fleetward_auth_failures_total', help: 'Failed operator authentications by reason', labelNames: ['reason'], registers }),
    authThrottled: new Counter({ name: 'fleetward_auth_throttled_total', help: 'Requests refused because their source failed authentication too often', registers }),
    auditEvents: new Counter({ name: 'fleetward_audit_events_total', help: 'Events appended to the audit trail', registers }),
    credentialFindings: new Gauge({ name: 'fleetward_credential_findings', help: 'Open credential audit findings by severity', labelNames: ['severity'], registers }),
    jobFailures: new Counter({ name: 'fleetward_job_failures_total', help: 'Background job runs that failed, by job', labelNames: ['job'], registers }),
  };
}
