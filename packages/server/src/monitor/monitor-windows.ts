import type { DeviceMetricsReport } from '@fleetward/protocol';
import type { Clock } from '../clock.js';
import type { Job } from '../jobs/scheduler.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { DeviceDetectionState } from './detection/detection-state.js';
import { evaluateWindow, type DeviceWindowInput } from './detection/evaluate-window.js';
import type { DetectionStateStore } from './detection-state-store.js';
import { CloudMetrics } from './metrics/cloud-metrics.js';
import { CUSTOM_REJECTIONS, type CustomRejection } from './metrics/custom-metrics.js';
import { DeviceMetrics } from './metrics/device-metrics.js';
import type { MetricsStore } from './metrics/metrics-store.js';
import { EMPTY_CLOUD, type MetricKind, type WindowMetrics } from './metrics/window-metrics.js';
import type { SecurityProfiles } from './security-profiles.js';
import type { DetectionSink } from './types.js';
import { tripwireDetection, tripwiresFor } from './detection/tripwires.js';

export interface MonitorWindowsDependencies {
  readonly clock: Clock;
  readonly logger: Pick<Logger, 'error' | 'warn'>;
  readonly metrics: MetricsStore;
  /** Where dropped custom metrics are counted (the node's Prometheus metrics). */
  readonly counters: Pick<NodeMetrics, 'monitorCustomDropped'>;
  readonly profiles: Pick<SecurityProfiles, 'assignments'>;
  readonly state: DetectionStateStore;
  readonly sink: DetectionSink;
  readonly windowSeconds: number;
  readonly retentionDays: number;
  readonly countryOf?: (address: string) => string | null;
  /** Write every device's detection state every this many windows (in between: only devices whose learned sets or alarms changed). */
  readonly fullStateEvery?: number;
}

export interface WindowSummary {
  readonly windowStart: string;
  readonly windowEnd: string;
  readonly devices: number;
  readonly detections: number;
  /** Custom values devices reported in the window that were dropped (undeclared, or not of the declared kind). */
  readonly droppedCustom: number;
}

/**
 * Rule 5 at the edge: the gateway feeds `cloud` and `report()`; when a window ends, `tick(now)`
 * closes it, stores each device's metrics, runs the detection engine over the window with the
 * state of earlier windows, stores the new state and hands the detections to the sink. Each node
 * evaluates the devices connected to it; fleet statistics are over those devices.
 */
export class MonitorWindows {
  readonly cloud: CloudMetrics;
  readonly #device: DeviceMetrics;
  readonly #deps: MonitorWindowsDependencies;
  #windowStart: number;
  #declarations = new Map<string, Map<string, MetricKind>>();
  #state: Map<string, DeviceDetectionState> | null = null;
  #windows = 0;

  constructor(deps: MonitorWindowsDependencies) {
    this.#deps = deps;
    this.#windowStart = alignedStart(deps.clock.now().getTime(), deps.windowSeconds);
    this.cloud = new CloudMetrics(new Date(this.#windowStart));
    this.#device = new DeviceMetrics((type) => (type === null ? undefined : this.#declarations.get(type)));
  }

  /** Loads what ingestion validates against (custom metric declarations); call before serving, and it refreshes each window. */
  async start(): Promise<void> {
    this.#declarations = await this.#deps.metrics.customDeclarations();
    await this.refreshTripwires();
  }

  /**
   * Arms the immediate behaviours of the profiles in force (`"immediate": true`): the gateway's
   * counters raise their detection the moment they pass the value, without waiting for the window.
   */
  async refreshTripwires(): Promise<void> {
    const { profiles, byThing, byGroup } = await this.#deps.profiles.assignments();
    this.cloud.watch(tripwiresFor(profiles, byThing), tripwiresFor(profiles, byGroup), (thing, wire, observed) => {
      const detection = tripwireDetection(thing, wire, observed, this.#deps.clock.now());
      this.#deps.sink.detected(detection).catch((error: unknown) => this.#deps.logger.error({ err: error, thing, behavior: wire.behavior.name }, 'the alert service refused a detection'));
    });
  }

  /** A device's metrics report (already parsed and checked by the gateway). */
  report(thing: string, thingType: string | null, report: DeviceMetricsReport): void {
    this.#device.record(thing, thingType, report);
  }

  forget(thing: string): void {
    this.cloud.forget(thing);
    this.#device.forget(thing);
    this.#state?.delete(thing);
  }

  /** Closes the current window if it has ended by `now` (a late tick closes it at its end, not later). */
  async tick(now: Date): Promise<WindowSummary | null> {
    const end = this.#windowStart + this.#deps.windowSeconds * 1000;
    if (now.getTime() < end) return null;
    const windowStart = new Date(this.#windowStart).toISOString();
    const windowEnd = new Date(end).toISOString();
    const cloud = this.cloud.drain(new Date(end));
    const device = this.#device.drain();
    // Counted first: a database that fails below must not lose them.
    const droppedCustom = this.#countDropped(device.rejectedCustom);
    // Skip windows in which the node was idle (a tick long after the last one).
    this.#windowStart = alignedStart(now.getTime(), this.#deps.windowSeconds);
    const windows: WindowMetrics[] = [];
    for (const [thing, c] of cloud.devices) {
      const d = device.devices.get(thing);
      windows.push({ thing, windowStart, windowEnd, cloud: c, device: d?.device ?? null, custom: d?.custom ?? {} });
    }
    for (const [thing, d] of device.devices) {
      if (!cloud.devices.has(thing)) windows.push({ thing, windowStart, windowEnd, cloud: EMPTY_CLOUD, device: d.device, custom: d.custom });
    }
    // Detection first: a database that cannot take the rows must not blind it.
    const detections = await this.#detect(windows, windowEnd);
    await this.#deps.metrics.write(windows).catch((error: unknown) => this.#deps.logger.error({ err: error, windowStart, devices: windows.length }, 'could not store a security metrics window'));
    this.#declarations = await this.#deps.metrics.customDeclarations();
    return { windowStart, windowEnd, devices: windows.length, detections, droppedCustom };
  }

  #countDropped(rejected: Readonly<Record<CustomRejection, number>>): number {
    let total = 0;
    for (const reason of CUSTOM_REJECTIONS) {
      if (rejected[reason] === 0) continue;
      this.#deps.counters.monitorCustomDropped.inc({ reason }, rejected[reason]);
      total += rejected[reason];
    }
    if (total > 0) this.#deps.logger.warn({ rejected }, 'devices reported undeclared or mistyped custom metrics (dropped)');
    return total;
  }

  async #detect(windows: readonly WindowMetrics[], windowEnd: string): Promise<number> {
    this.#state ??= await this.#deps.state.load();
    const { profiles, byThing } = await this.#deps.profiles.assignments();
    const devices: DeviceWindowInput[] = windows.map((window) => ({ window, profiles: byThing.get(window.thing) ?? [] }));
    const before = this.#state;
    const result = evaluateWindow({ windowEnd, windowSeconds: this.#deps.windowSeconds, devices, profiles, state: before, ...(this.#deps.countryOf !== undefined && { countryOf: this.#deps.countryOf }) });
    this.#windows += 1;
    const full = this.#windows % (this.#deps.fullStateEvery ?? 15) === 0;
    const changed: [string, DeviceDetectionState][] = [];
    for (const [thing, state] of result.state) {
      const old = before.get(thing);
      if (full || old === undefined || learnedChanged(old, state)) changed.push([thing, state]);
      before.set(thing, state);
    }
    await this.#deps.state.save(changed, this.#deps.clock.now());
    for (const detection of result.detections) {
      await this.#deps.sink.detected(detection).catch((error: unknown) => this.#deps.logger.error({ err: error, thing: detection.thing, behavior: detection.behavior }, 'the alert service refused a detection'));
    }
    return result.detections.length;
  }

  /** The scheduler job that closes windows (checked every few seconds, so a window closes within seconds of its end). */
  job(): Job {
    return {
      name: 'monitor-windows',
      everyMs: Math.min(5_000, this.#deps.windowSeconds * 250),
      run: async () => {
        // Profile changes (here or on another node) arm their immediate behaviours within seconds.
        await this.refreshTripwires();
        await this.tick(this.#deps.clock.now());
      },
    };
  }

  /** The scheduler job that deletes windows older than the retention (hourly). */
  retentionJob(): Job {
    return { name: 'monitor-retention', everyMs: 3_600_000, run: () => this.#deps.metrics.prune(this.#deps.retentionDays) };
  }
}

function alignedStart(ms: number, windowSeconds: number): number {
  const length = windowSeconds * 1000;
  return Math.floor(ms / length) * length;
}

function learnedChanged(before: DeviceDetectionState, after: DeviceDetectionState): boolean {
  if (before.ports?.length !== after.ports?.length || before.addresses?.length !== after.addresses?.length || before.countries.length !== after.countries.length) return true;
  const alarming = (s: DeviceDetectionState) => Object.values(s.alarms).filter((a) => a.alarming).length;
  return alarming(before) !== alarming(after);
}
