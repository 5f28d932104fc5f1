import { isIP } from 'node:net';
import { MessageReader, type NumberRange, type StringRule } from './validate.js';

/**
 * What a device reports about itself (rule 5's on-device activity): security metrics on
 * `$fw/things/{thing}/metrics` and its running software on `$fw/things/{thing}/inventory`.
 * Counters are cumulative (since boot, or kept by the agent across restarts); the server takes
 * deltas between reports, so a lost report costs resolution, not totals.
 */

/** 256 sockets and 256 addresses of at most 45 characters, plus custom metrics, stay well under this. */
export const MAX_METRICS_BYTES = 65_536;
export const MAX_INVENTORY_BYTES = 8_192;
/** Longer lists are cut (lowest ports, first addresses kept); `listeningTotal` still counts them all. */
export const MAX_LISTENING_SOCKETS = 256;
export const MAX_DESTINATIONS = 256;
export const MAX_CUSTOM_METRICS = 32;

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
  /** Device-specific numbers for custom detection rules. */
  readonly custom: Readonly<Record<string, number>>;
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
const CUSTOM_METRIC_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;
const VERSION: StringRule = { maxLength: 64, pattern: /^[A-Za-z0-9][A-Za-z0-9.+_~-]*$/ };
const SHA256 = /^sha256:[0-9a-f]{64}$/;
const IMAGE_HASH: StringRule = { maxLength: 71, pattern: SHA256 };
/** Printable text of the OS's own naming, control characters refused. */
const OS_TEXT: StringRule = { maxLength: 256, pattern: /^[^\p{Cc}]+$/u };
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
    custom: reader.numberMap('custom', { maxEntries: MAX_CUSTOM_METRICS, names: CUSTOM_METRIC_NAME, range: { min: -Number.MAX_VALUE, max: Number.MAX_VALUE } }),
  };
  reader.done();
  return report;
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
