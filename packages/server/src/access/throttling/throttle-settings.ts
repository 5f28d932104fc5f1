import { FleetwardError } from '@fleetward/protocol';

/**
 * Every throttling limit, one flat object so that each key maps to one config key
 * (`limits.<key>` in fleetward.json) and one environment variable (FLEETWARD_LIMITS_<KEY>).
 * Units are in the names. All values are integers. docs/limits.md explains each.
 */
export interface ThrottleSettings {
  /** Admitted device connections on this node (the global connection cap). */
  readonly maxConnections: number;
  /** Live connections one thing may hold at once under different client ids (a takeover always passes). */
  readonly maxConnectionsPerThing: number;
  readonly messagesPerSecond: number;
  /** Messages a device may send at once after being quiet. */
  readonly messageBurst: number;
  /** Payload bytes per second per device. */
  readonly bytesPerSecond: number;
  /** Payload bytes a device may send at once after being quiet; at least maxPayloadBytes. */
  readonly byteBurst: number;
  readonly maxPayloadBytes: number;
  /** Rate refusals within 10 s after which the connection is closed (MQTT 5: DISCONNECT 0x96). */
  readonly rateDisconnectAfterRefusals: number;
  readonly maxSubscriptionsPerThing: number;
  /** Unacknowledged QoS 1/2 messages each way; enforced by the broker engine (receiveMaximum, maxInflightMessages). */
  readonly maxInflightMessages: number;
  readonly connectsPerMinutePerThing: number;
  readonly connectBurstPerThing: number;
  /** Admitted connects of one thing within flappingWindowMs that get it banned for flappingBanMs. */
  readonly flappingMaxConnects: number;
  readonly flappingWindowMs: number;
  readonly flappingBanMs: number;
  /** TLS handshakes per minute per source (an IPv4 address, or an IPv6 /64), before authentication. */
  readonly handshakesPerMinutePerSource: number;
  readonly handshakeBurstPerSource: number;
  /** TLS handshakes per second for the whole node, from all sources: its CPU budget for TLS. */
  readonly handshakesPerSecond: number;
  readonly handshakeBurst: number;
  /** Longest a TCP connection is held before its handshake may start; beyond it, it is closed. */
  readonly handshakeMaxDelayMs: number;
  /** Extra handshakes a failed handshake or refused CONNECT costs its source. */
  readonly handshakeFailurePenalty: number;
  /** Things with rate or flapping state tracked at once (bounded memory). */
  readonly maxTrackedThings: number;
  /** Source addresses with handshake state tracked at once (bounded memory). */
  readonly maxTrackedSources: number;
  readonly maxBans: number;
  /** Refusals of one thing or source are summarized in at most one audit record per interval. */
  readonly auditIntervalMs: number;
  /** Things and sources named in refusal summaries at once; the rest are summed as "other". */
  readonly maxAuditKeys: number;
}

export type ThrottleSettingKey = keyof ThrottleSettings;

export interface ThrottleSettingSpec {
  readonly min: number;
  readonly max: number;
  readonly default: number;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/**
 * Ranges and production defaults. Device defaults follow AWS IoT Core's per-connection limits
 * (100 publishes/s, 512 KiB/s, 128 KiB payloads, 50 subscriptions); flapping follows EMQX
 * (15 connects a minute → 5 minute ban). Handshake defaults are sized for a reconnect storm:
 * see docs/limits.md.
 */
export const THROTTLE_SETTING_SPECS: Readonly<Record<ThrottleSettingKey, ThrottleSettingSpec>> = Object.freeze({
  maxConnections: { min: 1, max: 10_000_000, default: 100_000 },
  maxConnectionsPerThing: { min: 1, max: 1_000, default: 4 },
  messagesPerSecond: { min: 1, max: 1_000_000, default: 100 },
  messageBurst: { min: 1, max: 10_000_000, default: 200 },
  bytesPerSecond: { min: 1, max: 1024 * MIB, default: 512 * KIB },
  byteBurst: { min: 1, max: 1024 * MIB, default: 1 * MIB },
  maxPayloadBytes: { min: 1, max: 268_435_455, default: 128 * KIB },
  rateDisconnectAfterRefusals: { min: 1, max: 1_000_000, default: 100 },
  maxSubscriptionsPerThing: { min: 1, max: 1_000_000, default: 50 },
  maxInflightMessages: { min: 1, max: 65_535, default: 64 },
  connectsPerMinutePerThing: { min: 1, max: 60_000, default: 6 },
  connectBurstPerThing: { min: 1, max: 10_000, default: 5 },
  flappingMaxConnects: { min: 2, max: 10_000, default: 15 },
  flappingWindowMs: { min: 1_000, max: DAY_MS, default: MINUTE_MS },
  flappingBanMs: { min: 1_000, max: 30 * DAY_MS, default: 5 * MINUTE_MS },
  handshakesPerMinutePerSource: { min: 1, max: 6_000_000, default: 600 },
  handshakeBurstPerSource: { min: 1, max: 1_000_000, default: 100 },
  handshakesPerSecond: { min: 1, max: 1_000_000, default: 500 },
  handshakeBurst: { min: 1, max: 10_000_000, default: 1_000 },
  handshakeMaxDelayMs: { min: 0, max: MINUTE_MS, default: 5_000 },
  handshakeFailurePenalty: { min: 0, max: 10_000, default: 5 },
  maxTrackedThings: { min: 1_000, max: 10_000_000, default: 200_000 },
  maxTrackedSources: { min: 1_000, max: 10_000_000, default: 100_000 },
  maxBans: { min: 1, max: 10_000_000, default: 100_000 },
  auditIntervalMs: { min: 1_000, max: 60 * MINUTE_MS, default: 10_000 },
  maxAuditKeys: { min: 100, max: 1_000_000, default: 10_000 },
});

export const THROTTLE_SETTING_KEYS = Object.freeze(Object.keys(THROTTLE_SETTING_SPECS) as ThrottleSettingKey[]);

export const DEFAULT_THROTTLE_SETTINGS: ThrottleSettings = Object.freeze(
  Object.fromEntries(THROTTLE_SETTING_KEYS.map((key) => [key, THROTTLE_SETTING_SPECS[key].default])) as unknown as ThrottleSettings,
);

/** `messagesPerSecond` → `FLEETWARD_LIMITS_MESSAGES_PER_SECOND`. */
export function throttleSettingEnv(key: ThrottleSettingKey): `FLEETWARD_LIMITS_${string}` {
  return `FLEETWARD_LIMITS_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/**
 * Parses the `limits` config section: an object of some keys (the others keep their defaults),
 * each an integer or a string of digits (as the environment gives them). Throws FleetwardError
 * FW_ERR_CONFIG_INVALID naming `limits.<key>` for an unknown key, a value out of range, or
 * settings that contradict each other. Returns a frozen, complete ThrottleSettings.
 */
export function parseThrottleSettings(input: unknown): ThrottleSettings {
  if (input === undefined || input === null) return DEFAULT_THROTTLE_SETTINGS;
  if (typeof input !== 'object' || Array.isArray(input)) throw invalid('limits', input, 'an object of limits');
  const entries = Object.entries(input as Record<string, unknown>);
  const result: Record<string, number> = { ...DEFAULT_THROTTLE_SETTINGS };
  for (const [key, raw] of entries) {
    if (!Object.hasOwn(THROTTLE_SETTING_SPECS, key)) throw invalid(`limits.${key}`, raw, `one of the known limits (${THROTTLE_SETTING_KEYS.join(', ')})`);
    result[key] = parseInteger(key as ThrottleSettingKey, raw);
  }
  const settings = Object.freeze(result as unknown as ThrottleSettings);
  checkConsistency(settings);
  return settings;
}

function parseInteger(key: ThrottleSettingKey, raw: unknown): number {
  const { min, max } = THROTTLE_SETTING_SPECS[key];
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw invalid(`limits.${key}`, raw, `an integer between ${min} and ${max}`);
  return value;
}

/** Limits that would make a valid request impossible, or a bucket that can never refill to serve it. */
function checkConsistency(settings: ThrottleSettings): void {
  if (settings.byteBurst < settings.maxPayloadBytes) {
    throw invalid('limits.byteBurst', settings.byteBurst, `at least limits.maxPayloadBytes (${settings.maxPayloadBytes}), or a payload of the largest size could never pass`);
  }
}

function invalid(key: string, value: unknown, expected: string): FleetwardError {
  return new FleetwardError('FW_ERR_CONFIG_INVALID', `${key} must be ${expected}, not ${JSON.stringify(value) ?? String(value)}`, { key, expected });
}
