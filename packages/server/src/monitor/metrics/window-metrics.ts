import type { CustomMetricKind } from '@fleetward/protocol';

/**
 * Rule 5's security metrics of one device in one window: what the gateway saw (cloud side) and
 * what the device reported about itself (device side), reduced to numbers and short lists that
 * detection compares and the store keeps.
 */

/** Counted by the gateway for one device in one window. */
export interface CloudWindow {
  readonly connectAttempts: number;
  /** Connects refused for the credential (unknown, revoked, wrong state). */
  readonly authnFailures: number;
  /** Connects, publishes and subscribes the policy refused. */
  readonly authzFailures: number;
  readonly disconnects: number;
  /** Seconds of the window the device was not connected (after it was first seen connected). */
  readonly disconnectedSeconds: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Largest and mean size of the messages the device published (bytes); 0 without any. */
  readonly messageSizeMax: number;
  readonly messageSizeMean: number;
  /** Distinct source addresses the device connected (or tried to) from; the list is capped, the count is not. */
  readonly sourceAddressCount: number;
  readonly sourceAddresses: readonly string[];
  /** Most distinct addresses one of the device's certificates had live sessions from at the same time. */
  readonly certificateAddressesMax: number;
  /** The addresses of that moment (for the detection's message). */
  readonly certificateAddresses: readonly string[];
}

/** Reduced from the device's latest metrics report in the window; counters are deltas over the window. */
export interface DeviceWindow {
  /** `tcp/22`, `udp/5353`: a port reachable beyond loopback, or bound to loopback, each once. */
  readonly listening: readonly string[];
  readonly listeningPorts: readonly number[];
  readonly listeningTotal: number;
  readonly established: number;
  readonly destinations: readonly string[];
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly processes: number;
  readonly memoryUsedBytes: number;
  readonly cpuPercent: number;
  readonly diskUsedBytes: number;
  readonly uptimeSeconds: number;
  readonly agentRestarts: number;
  readonly authFailures: number;
  readonly batteryPercent: number | null;
}

/** A declared custom metric's value: a number, or a list of numbers, strings or addresses. */
export type CustomValue = number | readonly number[] | readonly string[];

export interface WindowMetrics {
  readonly thing: string;
  /** ISO times; windows are aligned to multiples of their length since the epoch. */
  readonly windowStart: string;
  readonly windowEnd: string;
  readonly cloud: CloudWindow;
  /** Null when the device sent no metrics report in the window. */
  readonly device: DeviceWindow | null;
  readonly custom: Readonly<Record<string, CustomValue>>;
}

export const EMPTY_CLOUD: CloudWindow = {
  connectAttempts: 0,
  authnFailures: 0,
  authzFailures: 0,
  disconnects: 0,
  disconnectedSeconds: 0,
  messagesIn: 0,
  messagesOut: 0,
  bytesIn: 0,
  bytesOut: 0,
  messageSizeMax: 0,
  messageSizeMean: 0,
  sourceAddressCount: 0,
  sourceAddresses: [],
  certificateAddressesMax: 0,
  certificateAddresses: [],
};

/** What a metric's values are, so a behaviour can be checked against it when it is declared; custom metrics are declared with the same kinds. */
export type MetricKind = CustomMetricKind;

/** Every standard metric a behaviour can name; custom ones are `custom.<name>`. */
export const STANDARD_METRICS = {
  'cloud.connectAttempts': 'number',
  'cloud.authnFailures': 'number',
  'cloud.authzFailures': 'number',
  'cloud.disconnects': 'number',
  'cloud.disconnectedSeconds': 'number',
  'cloud.messagesIn': 'number',
  'cloud.messagesOut': 'number',
  'cloud.bytesIn': 'number',
  'cloud.bytesOut': 'number',
  'cloud.messageSizeMax': 'number',
  'cloud.messageSizeMean': 'number',
  'cloud.sourceAddressCount': 'number',
  'cloud.sourceAddresses': 'address-list',
  'cloud.certificateAddressesMax': 'number',
  'device.listening': 'string-list',
  'device.listeningPorts': 'number-list',
  'device.listeningTotal': 'number',
  'device.established': 'number',
  'device.destinations': 'address-list',
  'device.bytesIn': 'number',
  'device.bytesOut': 'number',
  'device.packetsIn': 'number',
  'device.packetsOut': 'number',
  'device.processes': 'number',
  'device.memoryUsedBytes': 'number',
  'device.cpuPercent': 'number',
  'device.diskUsedBytes': 'number',
  'device.uptimeSeconds': 'number',
  'device.agentRestarts': 'number',
  'device.authFailures': 'number',
  'device.batteryPercent': 'number',
} as const satisfies Record<string, MetricKind>;

export type StandardMetric = keyof typeof STANDARD_METRICS;

export function isStandardMetric(name: string): name is StandardMetric {
  return Object.hasOwn(STANDARD_METRICS, name);
}

export type MetricValue = number | readonly number[] | readonly string[];

/** A metric's value in a window; undefined when the window has none (no device report, undeclared custom metric). */
export function metricValue(window: WindowMetrics, metric: string): MetricValue | undefined {
  const dot = metric.indexOf('.');
  const side = metric.slice(0, dot);
  const field = metric.slice(dot + 1);
  if (side === 'cloud') return (window.cloud as unknown as Record<string, MetricValue | undefined>)[field];
  if (side === 'device') {
    if (window.device === null) return undefined;
    const value = (window.device as unknown as Record<string, MetricValue | null | undefined>)[field];
    return value === null ? undefined : value;
  }
  if (side === 'custom') return window.custom[field];
  return undefined;
}

/** A reader of one metric, resolved once (detection reads a metric for every device of a window). */
export function metricReader(metric: string): (window: WindowMetrics) => MetricValue | undefined {
  const dot = metric.indexOf('.');
  const side = metric.slice(0, dot);
  const field = metric.slice(dot + 1);
  if (side === 'cloud') return (w) => (w.cloud as unknown as Record<string, MetricValue | undefined>)[field];
  if (side === 'device') {
    return (w) => {
      if (w.device === null) return undefined;
      const value = (w.device as unknown as Record<string, MetricValue | null | undefined>)[field];
      return value === null ? undefined : value;
    };
  }
  if (side === 'custom') return (w) => w.custom[field];
  return () => undefined;
}
