import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import type { Job } from '../jobs/scheduler.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { DetectionStateStore } from './detection-state-store.js';
import { loadGeoIp } from './geoip.js';
import { MetricsStore } from './metrics/metrics-store.js';
import { MonitorWindows } from './monitor-windows.js';
import { SecurityProfiles } from './security-profiles.js';
import type { DetectionSink } from './types.js';

/** Rule 5's metrics and detection side, as node.ts composes it. */
export interface MonitorServices {
  /** The gateway feeds `windows.cloud.*` and `windows.report()`. */
  readonly windows: MonitorWindows;
  readonly metrics: MetricsStore;
  readonly profiles: SecurityProfiles;
  /** Window closing (every few seconds) and retention (hourly). */
  jobs(): Job[];
}

export async function openMonitorServices(deps: {
  readonly config: Config;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The node's Prometheus metrics: dropped custom metrics are counted there. */
  readonly metrics: Pick<NodeMetrics, 'monitorCustomDropped'>;
  readonly sink: DetectionSink;
}): Promise<MonitorServices> {
  const { config, store, audit, clock, logger, sink } = deps;
  const metrics = new MetricsStore({ store, audit, clock });
  const customKinds = async () => new Map([...(await metrics.customDeclarations()).values()].flatMap((names) => [...names]));
  const profiles = new SecurityProfiles({ store, audit, clock, customKinds });
  const countryOf = config.monitor.geoipFile === null ? undefined : await loadGeoIp(config.monitor.geoipFile);
  const windows = new MonitorWindows({
    clock,
    logger,
    metrics,
    counters: deps.metrics,
    profiles,
    state: new DetectionStateStore(store),
    sink,
    windowSeconds: config.monitor.windowSeconds,
    retentionDays: config.monitor.retentionDays,
    ...(countryOf !== undefined && { countryOf }),
  });
  profiles.onChange(() => void windows.refreshTripwires().catch((error: unknown) => logger.error({ err: error }, 'could not arm the immediate behaviours')));
  await windows.start();
  return { windows, metrics, profiles, jobs: () => [windows.job(), windows.retentionJob()] };
}
