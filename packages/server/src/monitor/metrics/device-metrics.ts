import type { DeviceMetricsReport } from '@fleetward/protocol';
import { validateCustom, type CustomRejection } from './custom-metrics.js';
import type { CustomValue, DeviceWindow, MetricKind } from './window-metrics.js';

const MAX_DEVICES = 500_000;

interface Latest {
  readonly report: DeviceMetricsReport;
  readonly custom: Readonly<Record<string, CustomValue>>;
}

/**
 * Device-side metrics per window (rule 5): the latest report each device sent in the window,
 * with its cumulative counters turned into deltas against the last report of an earlier window
 * (a counter that went back means the agent restarted: what it counts since is all new).
 * Custom metrics are kept only when the device's type declares them (`declarations`).
 */
export class DeviceMetrics {
  #window = new Map<string, Latest>();
  /** The last report of an earlier window, for deltas. */
  readonly #previous = new Map<string, DeviceMetricsReport>();
  #rejected = noRejections();
  readonly #declarations: (thingType: string | null) => ReadonlyMap<string, MetricKind> | undefined;

  constructor(declarations: (thingType: string | null) => ReadonlyMap<string, MetricKind> | undefined) {
    this.#declarations = declarations;
  }

  record(thing: string, thingType: string | null, report: DeviceMetricsReport): void {
    if (!this.#window.has(thing) && this.#window.size >= MAX_DEVICES) return;
    const { values, rejected } = validateCustom(this.#declarations(thingType), report.custom);
    for (const { reason } of rejected) this.#rejected[reason] += 1;
    this.#window.set(thing, { report, custom: values });
  }

  forget(thing: string): void {
    this.#window.delete(thing);
    this.#previous.delete(thing);
  }

  /** The window's device metrics, and how many custom values were dropped, by why; starts the next window. */
  drain(): { readonly devices: ReadonlyMap<string, { readonly device: DeviceWindow; readonly custom: Readonly<Record<string, CustomValue>> }>; readonly rejectedCustom: Readonly<Record<CustomRejection, number>> } {
    const devices = new Map<string, { device: DeviceWindow; custom: Readonly<Record<string, CustomValue>> }>();
    for (const [thing, { report, custom }] of this.#window) {
      devices.set(thing, { device: deviceWindow(report, this.#previous.get(thing)), custom });
      if (this.#previous.size < MAX_DEVICES || this.#previous.has(thing)) this.#previous.set(thing, report);
    }
    const rejectedCustom = this.#rejected;
    this.#window = new Map();
    this.#rejected = noRejections();
    return { devices, rejectedCustom };
  }
}

function noRejections(): Record<CustomRejection, number> {
  return { undeclared: 0, 'wrong-kind': 0 };
}

/** One report reduced to a window's metrics; counters as deltas against `before` (none: the report's own totals count from zero only once the agent restarted). */
export function deviceWindow(report: DeviceMetricsReport, before: DeviceMetricsReport | undefined): DeviceWindow {
  const restarted = before !== undefined && (report.agentRestarts > before.agentRestarts || report.uptimeSeconds < before.uptimeSeconds);
  const delta = (now: number, then: number | undefined) => (then === undefined ? 0 : now >= then && !restarted ? now - then : now);
  const { network } = report;
  const listening = [...new Set(network.listening.map((s) => `${s.protocol}/${s.port}`))];
  return {
    listening,
    listeningPorts: [...new Set(network.listening.map((s) => s.port))],
    listeningTotal: network.listeningTotal,
    established: network.established,
    destinations: network.destinations,
    bytesIn: delta(network.bytesIn, before?.network.bytesIn),
    bytesOut: delta(network.bytesOut, before?.network.bytesOut),
    packetsIn: delta(network.packetsIn, before?.network.packetsIn),
    packetsOut: delta(network.packetsOut, before?.network.packetsOut),
    processes: report.processes,
    memoryUsedBytes: report.memory.usedBytes,
    cpuPercent: report.cpuPercent,
    diskUsedBytes: report.disk.usedBytes,
    uptimeSeconds: report.uptimeSeconds,
    agentRestarts: before === undefined ? 0 : Math.max(0, report.agentRestarts - before.agentRestarts),
    authFailures: delta(report.authFailures, before?.authFailures),
    batteryPercent: report.batteryPercent,
  };
}
