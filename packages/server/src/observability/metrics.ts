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
  /** MQTT CONNECTs decided by the gateway, by outcome and reason. */
  readonly mqttConnects: Counter<'outcome' | 'reason'>;
  /** Device TLS handshakes that failed (no, untrusted or expired certificate; old TLS; refused suite). */
  readonly mqttHandshakeFailures: Counter;
  /** Publishes and subscriptions the policy refused, by action. */
  readonly mqttDenied: Counter<'action'>;
  /** Handshakes, connects and publishes the device limits refused, by reason. */
  readonly mqttThrottled: Counter<'reason'>;
  /** Refusals by the broker engine's own limits, by limit. */
  readonly mqttLimited: Counter<'limit'>;
  /** Application messages judged against their data contracts, by outcome and refusal reason. */
  /** Update alerts raised (deployment aborted, stalled device, unauthorized firmware...), by kind. */
  readonly updateAlerts: Counter<'kind'>;
  /** Custom device metrics dropped on ingest (undeclared for the device's thing type, or not of the declared kind), by reason. */
  readonly monitorCustomDropped: Counter<'reason'>;
  /** Update metadata and artifact downloads by devices, by what and outcome. */
  readonly updateDownloads: Counter<'what' | 'outcome'>;
  /** Rule 6: 1 when the canary found the control holding at its last check, 0 when not (error included). */
  readonly controlHeld: Gauge<'control'>;
  /** Rule 6: when each control was last checked by a canary (Unix seconds). */
  readonly controlCheckedAt: Gauge<'control'>;
  /** Rule 6, fail closed: 1 when the dependency (database, redis) answered its last probe, 0 when not. */
  readonly dependencyUp: Gauge<'dependency'>;
  /** Rule 6, fail closed: live device sessions closed because a dependency stayed away longer than the bound. */
  readonly failClosedDisconnects: Counter<'dependency'>;
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
    mqttConnects: new Counter({ name: 'fleetward_mqtt_connects_total', help: 'MQTT CONNECTs decided by the gateway, by outcome and reason', labelNames: ['outcome', 'reason'], registers }),
    mqttHandshakeFailures: new Counter({ name: 'fleetward_mqtt_tls_handshake_failures_total', help: 'Device TLS handshakes that failed', registers }),
    mqttThrottled: new Counter({ name: 'fleetward_mqtt_throttled_total', help: 'Handshakes, connects and publishes refused by the device limits, by reason', labelNames: ['reason'], registers }),
    mqttLimited: new Counter({ name: 'fleetward_mqtt_engine_limit_refusals_total', help: 'Refusals by the broker engine limits (subscriptions, in-flight messages, packet size...), by limit', labelNames: ['limit'], registers }),
    monitorCustomDropped: new Counter({ name: 'fleetward_monitor_custom_metrics_dropped_total', help: 'Custom device metrics dropped on ingest, by reason (undeclared: the device\'s thing type does not declare the name; wrong-kind: a value of another kind than declared)', labelNames: ['reason'], registers }),
    updateAlerts: new Counter({ name: 'fleetward_update_alerts_total', help: 'Update alerts raised, by kind (deployment-aborted, job-timed-out, unauthorized-firmware, ...)', labelNames: ['kind'], registers }),
    updateDownloads: new Counter({ name: 'fleetward_update_downloads_total', help: 'Update metadata and artifact requests by devices, by what (metadata, artifact) and outcome (served, partial, refused, not-found)', labelNames: ['what', 'outcome'], registers }),
    controlHeld: new Gauge({ name: 'fleetward_control_held', help: 'Rule 6 canaries: 1 when the security control held at its last check, 0 when it did not or could not be checked', labelNames: ['control'], registers }),
    controlCheckedAt: new Gauge({ name: 'fleetward_control_last_checked_timestamp_seconds', help: 'Rule 6 canaries: when each security control was last checked (Unix seconds)', labelNames: ['control'], registers }),
    dependencyUp: new Gauge({ name: 'fleetward_dependency_up', help: 'Rule 6: 1 when the dependency (database, redis) answered its last probe, 0 while it is away (new device connections are refused)', labelNames: ['dependency'], registers }),
    failClosedDisconnects: new Counter({ name: 'fleetward_fail_closed_disconnects_total', help: 'Rule 6: live device sessions closed because a dependency stayed away longer than FLEETWARD_HEALTH_FAIL_CLOSED_GRACE_SECONDS', labelNames: ['dependency'], registers }),
    mqttDenied: new Counter({ name: 'fleetward_mqtt_denied_total', help: 'Publishes and subscriptions refused by policy, by action', labelNames: ['action'], registers }),
  };
}
