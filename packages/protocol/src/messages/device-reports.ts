import { isIP } from 'node:net';
import { MessageReader, type NumberRange, type StringRule } from './validate.js';

/**
 * What a device reports about itself (rule 5's on-device activity): security metrics on
 * `$fw/things/{thing}/metrics` and its running software on `$fw/things/{thing}/inventory`.
 * Counters are cumulative (since boot, or kept by the agent across restarts); the server takes
 * deltas between reports, so a lost report costs resolution, not totals.
 */

/**
 * 256 sockets and 256 addresses of at most 45 characters, plus 32 numeric custom metrics, stay well
 * under this; custom lists share what is left (the agent drops the largest that would not fit).
 */
export const MAX_METRICS_BYTES = 65_536;
export const MAX_INVENTORY_BYTES = 8_192;
/** Longer lists are cut (lowest ports, first addresses kept); `listeningTotal` still counts them all. */
export const MAX_LISTENING_SOCKETS = 256;
export const MAX_DESTINATIONS = 256;
export const MAX_CUSTOM_METRICS = 32;
/** Items of one custom list metric: as many as the built-in lists carry. A longer list is refused, not cut (cutting would hide what detection looks for). */
export const MAX_CUSTOM_LIST_ITEMS = 256;
export const MAX_CUSTOM_STRING_LENGTH = 128;
export const CUSTOM_METRIC_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;

/** What a custom metric's values are: the kind a thing type declares it with, and the tag its list carries in a report. */
export const CUSTOM_METRIC_KINDS = ['number', 'number-list', 'string-list', 'address-list'] as const;
export type CustomMetricKind = (typeof CUSTOM_METRIC_KINDS)[number];
const CUSTOM_LIST_KINDS = ['number-list', 'string-list', 'address-list'] as const satisfies readonly CustomMetricKind[];

/**
 * A custom metric in a report: a bare number (as every v1 agent sent), or a list tagged with its
 * kind, `{"address-list": ["192.0.2.1"]}`. The tag is what lets the report's own schema check
 * addresses as addresses, on the device and at the gateway, before any declaration is looked up.
 */
export type CustomMetricValue =
  | number
  | { readonly 'number-list': readonly number[] }
  | { readonly 'string-list': readonly string[] }
  | { readonly 'address-list': readonly string[] };

export const TRANSPORTS = ['tcp', 'udp'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** A socket waiting for peers: TCP in LISTEN, or an unconnected bound UDP socket. */
export interface ListeningSocket {
  readonly protocol: Transport;
  /** The bound address: `0.0.0.0` or `::` is reachable from every interface, `127.0.0.1` only locally. */
  readonly address: string;
  readonly port: number;
}

export interface NetworkMetrics {
  /** Sorted by protocol, port, address; at most MAX_LISTENING_SOCKETS. */
  readonly listening: readonly ListeningSocket[];
  readonly listeningTotal: number;
  /** TCP connections in ESTABLISHED. */
  readonly established: number;
  /** Distinct remote addresses of those connections, at most MAX_DESTINATIONS. */
  readonly destinations: readonly string[];
  /** Summed over every interface but loopback, since each came up. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
}

export interface DeviceMetricsReport {
  /**
   * Still 1 with custom lists: they widened `custom` without changing what any earlier report
   * means, so every agent's report is read as before. A server older than the lists refuses a
   * report that carries one (as it would refuse a v2): upgrade servers before applications report lists.
   */
  readonly v: 1;
  readonly at: string;
  readonly network: NetworkMetrics;
  readonly processes: number;
  readonly memory: { readonly totalBytes: number; readonly usedBytes: number };
  /** Share of CPU time not idle since the previous report, 0 to 100. */
  readonly cpuPercent: number;
  readonly disk: { readonly totalBytes: number; readonly usedBytes: number; readonly freeBytes: number };
  readonly uptimeSeconds: number;
  readonly agentRestarts: number;
  /** Failed local logins and refused local API calls, as the agent counts them. */
  readonly authFailures: number;
  /** Percent, or null on a device without a battery (or whose battery cannot be read). */
  readonly batteryPercent: number | null;
  /** Device-specific values for custom detection rules, by name; the server keeps those the device's thing type declares, of the declared kind. */
  readonly custom: Readonly<Record<string, CustomMetricValue>>;
}

export interface InventoryReport {
  readonly v: 1;
  readonly at: string;
  readonly agentVersion: string;
  readonly firmwareVersion: string;
  /** The anti-rollback counter of the running firmware (rule 4); absent from agents that do not update. */
  readonly securityVersion?: number;
  /** `sha256:<hex>` of the running firmware image, or null when the device has no image file to hash. */
  readonly imageHash: string | null;
  readonly os: {
    readonly type: string;
    readonly release: string;
    readonly arch: string;
    /** os-release(5) PRETTY_NAME, when the device has one. */
    readonly name: string | null;
  };
  /** Where the image's SBOM is (a URI) or which it is (a `sha256:` digest). */
  readonly sbomRef: string | null;
}

const COUNT: NumberRange = { min: 0, max: Number.MAX_SAFE_INTEGER };
const PORT: NumberRange = { min: 1, max: 65_535 };
const PERCENT: NumberRange = { min: 0, max: 100 };
/** Text forms only (no `%zone`): what the kernel's socket tables and interfaces give. */
const IP_ADDRESS: StringRule = { maxLength: 45, pattern: /^[0-9A-Fa-f:.]+$/, check: { name: 'an IPv4 or IPv6 address', test: (value) => isIP(value) !== 0 } };
const VERSION: StringRule = { maxLength: 64, pattern: /^[A-Za-z0-9][A-Za-z0-9.+_~-]*$/ };
const SHA256 = /^sha256:[0-9a-f]{64}$/;
const IMAGE_HASH: StringRule = { maxLength: 71, pattern: SHA256 };
/** No control characters: these strings end up in logs, alert messages and the console. */
const PRINTABLE = /^[^\p{Cc}]+$/u;
/** Printable text of the OS's own naming. */
const OS_TEXT: StringRule = { maxLength: 256, pattern: PRINTABLE };
const CUSTOM_TEXT: StringRule = { maxLength: MAX_CUSTOM_STRING_LENGTH, pattern: PRINTABLE };
const ANY_NUMBER: NumberRange = { min: -Number.MAX_VALUE, max: Number.MAX_VALUE };
/**
 * A whole `sha256:` digest, or an `https:`, `http:`, `oci:` or `urn:` URI. Other schemes are refused:
 * the console shows this as a link, and `javascript:` must never get there.
 */
const SBOM_REF: StringRule = {
  maxLength: 2048,
  pattern: /^(?:sha256:[0-9a-f]{64}|(?:https?|oci):\/\/[\x21-\x7e]+|urn:[A-Za-z0-9][\x21-\x7e]+)$/,
  check: { name: 'a URI or a sha256: digest', test: (value) => value.startsWith('sha256:') || URL.canParse(value) },
};

export function parseDeviceMetrics(payload: Uint8Array): DeviceMetricsReport {
  const reader = MessageReader.of(payload, 'device metrics report', MAX_METRICS_BYTES);
  const report: DeviceMetricsReport = {
    v: reader.literal('v', 1),
    at: reader.timestamp('at'),
    network: reader.object('network', readNetwork),
    processes: reader.integer('processes', COUNT),
    memory: reader.object('memory', (memory) => {
      const totalBytes = memory.integer('totalBytes', COUNT);
      return { totalBytes, usedBytes: memory.integer('usedBytes', { min: 0, max: totalBytes }) };
    }),
    cpuPercent: reader.number('cpuPercent', PERCENT),
    disk: reader.object('disk', (disk) => {
      const totalBytes = disk.integer('totalBytes', COUNT);
      return { totalBytes, usedBytes: disk.integer('usedBytes', { min: 0, max: totalBytes }), freeBytes: disk.integer('freeBytes', { min: 0, max: totalBytes }) };
    }),
    uptimeSeconds: reader.integer('uptimeSeconds', COUNT),
    agentRestarts: reader.integer('agentRestarts', COUNT),
    authFailures: reader.integer('authFailures', COUNT),
    batteryPercent: reader.nullableNumber('batteryPercent', PERCENT),
    custom: readCustom(reader),
  };
  reader.done();
  return report;
}

/**
 * Custom metrics checked exactly as a report's `custom` field is: the agent checks an
 * application's values with it one by one, so one bad value costs that metric, not the report.
 */
export function parseCustomMetrics(value: unknown): Readonly<Record<string, CustomMetricValue>> {
  const reader = MessageReader.fromValue({ custom: value }, 'device metrics report');
  const custom = readCustom(reader);
  reader.done();
  return custom;
}

export function customMetricKind(value: CustomMetricValue): CustomMetricKind {
  if (typeof value === 'number') return 'number';
  if ('number-list' in value) return 'number-list';
  return 'string-list' in value ? 'string-list' : 'address-list';
}

export function parseInventory(payload: Uint8Array): InventoryReport {
  const reader = MessageReader.of(payload, 'inventory report', MAX_INVENTORY_BYTES);
  const report: InventoryReport = {
    v: reader.literal('v', 1),
    at: reader.timestamp('at'),
    agentVersion: reader.string('agentVersion', VERSION),
    firmwareVersion: reader.string('firmwareVersion', VERSION),
    ...optionalField('securityVersion', reader.optionalInteger('securityVersion', { min: 0, max: 2_147_483_647 })),
    imageHash: reader.nullableString('imageHash', IMAGE_HASH),
    os: reader.object('os', (os) => ({
      type: os.string('type', OS_TEXT),
      release: os.string('release', OS_TEXT),
      arch: os.string('arch', OS_TEXT),
      name: os.nullableString('name', OS_TEXT),
    })),
    sbomRef: reader.nullableString('sbomRef', SBOM_REF),
  };
  reader.done();
  return report;
}

function optionalField<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function readNetwork(network: MessageReader): NetworkMetrics {
  const listening = network.objectArray('listening', MAX_LISTENING_SOCKETS, (socket) => ({
    protocol: socket.choice('protocol', TRANSPORTS),
    address: socket.string('address', IP_ADDRESS),
    port: socket.integer('port', PORT),
  }));
  // A total below the listed count, or more destinations than connections, is a report that contradicts itself.
  const listeningTotal = network.integer('listeningTotal', { min: listening.length, max: Number.MAX_SAFE_INTEGER });
  const destinations = network.stringArray('destinations', { ...IP_ADDRESS, maxItems: MAX_DESTINATIONS });
  const established = network.integer('established', { min: destinations.length, max: Number.MAX_SAFE_INTEGER });
  return {
    listening,
    listeningTotal,
    established,
    destinations,
    bytesIn: network.integer('bytesIn', COUNT),
    bytesOut: network.integer('bytesOut', COUNT),
    packetsIn: network.integer('packetsIn', COUNT),
    packetsOut: network.integer('packetsOut', COUNT),
  };
}

function readCustom(reader: MessageReader): Record<string, CustomMetricValue> {
  return reader.map('custom', { maxEntries: MAX_CUSTOM_METRICS, names: CUSTOM_METRIC_NAME }, (custom, name) => custom.numberOrTagged(name, ANY_NUMBER, CUSTOM_LIST_KINDS, readCustomList));
}

function readCustomList(list: MessageReader, kind: (typeof CUSTOM_LIST_KINDS)[number]): CustomMetricValue {
  const maxItems = MAX_CUSTOM_LIST_ITEMS;
  switch (kind) {
    case 'number-list':
      return { 'number-list': list.numberArray(kind, { ...ANY_NUMBER, maxItems }) };
    case 'string-list':
      return { 'string-list': list.stringArray(kind, { ...CUSTOM_TEXT, maxItems }) };
    case 'address-list':
      return { 'address-list': list.stringArray(kind, { ...IP_ADDRESS, maxItems }) };
    default: {
      const never: never = kind;
      return never;
    }
  }
}
