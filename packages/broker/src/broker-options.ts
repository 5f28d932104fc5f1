import type { ClusterTransport } from './cluster/cluster-transport.js';
import type { Persistence } from './persistence/persistence.js';

/**
 * Every limit the engine enforces, each with its unit in its name. A refusal by one of them is
 * counted in stats and reported to the `onLimit` hook under the option's name (see `limitNames`).
 */
export interface BrokerLimits {
  /** Most simultaneous connections, counted from the moment a stream is handed to the broker. */
  readonly maxConnections: number;
  /** Time a new connection has to complete its CONNECT (and any AUTH exchange), in ms. */
  readonly connectTimeoutMs: number;
  /** Largest packet accepted, fixed header included, in bytes: the Maximum Packet Size in CONNACK. */
  readonly maxPacketSizeBytes: number;
  /** Longest client identifier accepted, in UTF-8 bytes. */
  readonly maxClientIdLengthBytes: number;
  /** Longest topic name or filter, in UTF-8 bytes. */
  readonly maxTopicLengthBytes: number;
  /** Most levels in a topic name or filter. */
  readonly maxTopicLevels: number;
  /** Most subscriptions one session holds. */
  readonly maxSubscriptionsPerClient: number;
  /** QoS 1 and 2 messages a client may leave unacknowledged towards us: our Receive Maximum. */
  readonly receiveMaximum: number;
  /** QoS 1 and 2 messages we leave unacknowledged towards a client, also capped by its Receive Maximum. */
  readonly maxInflightMessages: number;
  /** Messages queued per session (offline, or behind a full window); the oldest is dropped beyond it. */
  readonly maxQueuedMessages: number;
  /** Bytes a client's socket may hold unsent before QoS 0 messages to it are dropped. */
  readonly maxPendingWriteBytes: number;
  /** Time a client's socket may refuse to drain before the client is disconnected, in ms. */
  readonly drainTimeoutMs: number;
  /** Shortest Keep Alive, in seconds; shorter requests are raised to it. */
  readonly minKeepAliveSeconds: number;
  /** Longest Keep Alive, in seconds; longer requests and 0 (none) are lowered to it. */
  readonly maxKeepAliveSeconds: number;
  /** Longest Session Expiry Interval, in seconds; also how long a 3.1.1 persistent session lasts. */
  readonly maxSessionExpirySeconds: number;
  /** Topic aliases a client may set per connection: the Topic Alias Maximum in CONNACK. */
  readonly topicAliasMaximum: number;
  /** Highest QoS accepted in PUBLISH and granted in SUBACK. */
  readonly maximumQoS: 0 | 1 | 2;
  /** Most topics holding a retained message. */
  readonly maxRetainedMessages: number;
  /** Messages recorded for one session while it is handed over from another node; the oldest is dropped beyond it. */
  readonly maxHandoverMessages: number;
}

/**
 * Names a refusal is reported under: the limits that refuse something (the others only bound a
 * value the client asked for), and the client's own Maximum Packet Size.
 */
export const limitNames = [
  'maxConnections',
  'connectTimeoutMs',
  'maxPacketSizeBytes',
  'maxClientIdLengthBytes',
  'maxTopicLengthBytes',
  'maxTopicLevels',
  'maxSubscriptionsPerClient',
  'receiveMaximum',
  'maxQueuedMessages',
  'maxPendingWriteBytes',
  'drainTimeoutMs',
  'topicAliasMaximum',
  'maximumQoS',
  'maxRetainedMessages',
  'maxHandoverMessages',
  'clientMaximumPacketSize',
] as const satisfies readonly (keyof BrokerLimits | 'clientMaximumPacketSize')[];

export type LimitName = (typeof limitNames)[number];

/**
 * Safe defaults: small enough that one client cannot exhaust the node, large enough for fleets of
 * ordinary devices. Tune them per deployment.
 */
export const defaultLimits: BrokerLimits = Object.freeze({
  maxConnections: 100_000,
  connectTimeoutMs: 10_000,
  maxPacketSizeBytes: 256 * 1024,
  maxClientIdLengthBytes: 128,
  maxTopicLengthBytes: 1024,
  maxTopicLevels: 32,
  maxSubscriptionsPerClient: 100,
  receiveMaximum: 64,
  maxInflightMessages: 64,
  maxQueuedMessages: 1000,
  maxPendingWriteBytes: 1024 * 1024,
  drainTimeoutMs: 30_000,
  minKeepAliveSeconds: 5,
  maxKeepAliveSeconds: 1200,
  maxSessionExpirySeconds: 24 * 60 * 60,
  topicAliasMaximum: 32,
  maximumQoS: 2,
  maxRetainedMessages: 100_000,
  maxHandoverMessages: 100_000,
});

export interface BrokerOptions {
  /** Limits to change; the others keep their defaults. */
  readonly limits?: Partial<BrokerLimits>;
  /** Where sessions, queues and retained messages outlive connections; memory by default. */
  readonly persistence?: Persistence;
  /**
   * Makes this engine one node of a cluster: messages reach subscribers on every node, and sessions
   * move between nodes. The nodes must share one persistence. None by default (a single node).
   */
  readonly cluster?: ClusterTransport;
  /** How often timers are checked (keep alive, connect and drain timeouts, will delay, session expiry), in ms. */
  readonly sweepIntervalMs?: number;
  /** The clock, in epoch ms; tests move it. */
  readonly now?: () => number;
}

const ranges: Readonly<Record<keyof BrokerLimits, readonly [number, number]>> = {
  maxConnections: [1, 10_000_000],
  connectTimeoutMs: [100, 600_000],
  // 5 bytes of fixed header plus the largest Remaining Length (MQTT 1.5.5).
  maxPacketSizeBytes: [64, 268_435_460],
  maxClientIdLengthBytes: [23, 65_535],
  maxTopicLengthBytes: [1, 65_535],
  maxTopicLevels: [1, 65_535],
  maxSubscriptionsPerClient: [1, 1_000_000],
  receiveMaximum: [1, 65_535],
  maxInflightMessages: [1, 65_535],
  maxQueuedMessages: [0, 10_000_000],
  maxPendingWriteBytes: [0, 1024 * 1024 * 1024],
  drainTimeoutMs: [100, 3_600_000],
  minKeepAliveSeconds: [0, 65_535],
  maxKeepAliveSeconds: [1, 65_535],
  maxSessionExpirySeconds: [0, 0xffff_ffff],
  topicAliasMaximum: [0, 65_535],
  maximumQoS: [0, 2],
  maxRetainedMessages: [0, 100_000_000],
  maxHandoverMessages: [0, 10_000_000],
};

/** The effective limits: defaults overridden by the options, each checked to be an integer in range. */
export function resolveLimits(overrides: Partial<BrokerLimits> = {}): BrokerLimits {
  const limits: Record<string, number> = { ...defaultLimits };
  for (const [name, value] of Object.entries(overrides)) {
    const range = ranges[name as keyof BrokerLimits] as readonly [number, number] | undefined;
    if (range === undefined) throw new TypeError(`unknown broker limit "${name}"`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw new RangeError(`broker limit ${name} must be an integer from ${range[0]} to ${range[1]}, not ${String(value)}`);
    }
    limits[name] = value;
  }
  if ((limits.minKeepAliveSeconds as number) > (limits.maxKeepAliveSeconds as number)) {
    throw new RangeError('broker limit minKeepAliveSeconds must not exceed maxKeepAliveSeconds');
  }
  return Object.freeze(limits) as unknown as BrokerLimits;
}
