import { Counter, Gauge, Histogram } from 'prom-client';
import type { VerdictTotal } from '../data/data-ingest.js';
import type { NodeMetrics } from './metrics.js';

/** What the platform metrics read when Prometheus scrapes: counts the broker, the audit log and the telemetry writer keep anyway. */
export interface ObservedParts {
  readonly broker: () => { readonly connections: number; readonly clients: number; readonly offlineSessions: number; readonly subscriptions: number; readonly messagesReceived: number; readonly messagesDelivered: number };
  readonly auditPending: () => number;
  readonly telemetryPending: () => number;
  readonly dataVerdicts: () => readonly VerdictTotal[];
}

/**
 * Rule 5's platform observability: live connections, messages in and out, queue depths, read at
 * scrape time from what the parts already count (nothing is added to the per-message path), and
 * a histogram of policy evaluation latency fed by the gateway's samples.
 */
export function observePlatform(metrics: NodeMetrics, parts: ObservedParts): { readonly policyEvaluation: Histogram } {
  const registers = [metrics.registry];
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        // The broker keeps the running total; the counter mirrors it.
        this.reset();
        this.inc(read());
      },
    });
  gauge('fleetward_mqtt_connections', 'Device connections being handled (TLS streams, CONNECT done or not)', () => parts.broker().connections);
  gauge('fleetward_mqtt_clients', 'Device clients past their CONNACK', () => parts.broker().clients);
  gauge('fleetward_mqtt_offline_sessions', 'Persistent sessions kept for devices that are away (their queued messages wait)', () => parts.broker().offlineSessions);
  gauge('fleetward_mqtt_subscriptions', 'Subscriptions held, online and offline', () => parts.broker().subscriptions);
  counter('fleetward_mqtt_messages_received_total', 'PUBLISH packets accepted from devices', () => parts.broker().messagesReceived);
  counter('fleetward_mqtt_messages_delivered_total', 'PUBLISH packets sent to devices', () => parts.broker().messagesDelivered);
  gauge('fleetward_audit_queue_depth', 'Audit events accepted and waiting for their group commit', parts.auditPending);
  gauge('fleetward_telemetry_queue_depth', 'Accepted telemetry waiting to be stored (new data is refused beyond FLEETWARD_DATA_MAX_PENDING_MESSAGES)', parts.telemetryPending);
  new Counter({
    name: 'fleetward_data_messages_total',
    help: 'Application messages judged against their data contracts, by outcome (accepted, refused, unclassified) and refusal reason',
    labelNames: ['outcome', 'reason'],
    registers,
    collect() {
      // The ingest keeps the running totals (plain fields on the per-message path); the counter mirrors them.
      this.reset();
      for (const { outcome, reason, count } of parts.dataVerdicts()) this.inc({ outcome, reason }, count);
    },
  });
  const policyEvaluation = new Histogram({
    name: 'fleetward_policy_evaluation_seconds',
    help: 'Time to decide a publish against the connection policy (one publish in 64 is timed)',
    buckets: [0.000_001, 0.000_005, 0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001],
    registers,
  });
  return { policyEvaluation };
}
