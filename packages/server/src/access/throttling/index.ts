/**
 * Throttling and limits (rule 2): per-device rate buckets, payload, subscription and connection
 * limits, TLS handshakes per source before authentication, flapping bans, a ban list, and refusal
 * summaries for the audit trail. Pure: the gateway wires `Throttle` into its hooks, the config
 * module parses the `limits` section with `parseThrottleSettings`.
 */
export type { Ban, BanKind, BanReason, BanResult, BanTarget } from './ban-list.js';
export type { PublishVerdict } from './device-limiter.js';
export type { HandshakeDecision } from './handshake-rate-limiter.js';
export {
  refusalResponse,
  THROTTLE_REFUSALS,
  type ConnectRefusal,
  type HandshakeRefusal,
  type MqttProtocolVersion,
  type PolicyRefusal,
  type PublishRefusal,
  type Refusal,
  type RefusalResponse,
  type SubscribeRefusal,
  type ThrottleRefusal,
} from './refusal-codes.js';
export { sourceKey } from './source-address.js';
export { Throttle, type BanRequest, type ConnectVerdict, type SubscribeVerdict, type ThrottleStats } from './throttle.js';
export { describeThrottleSummary, type RefusalSubject, type ThrottleSummary } from './throttle-audit.js';
export {
  DEFAULT_THROTTLE_SETTINGS,
  parseThrottleSettings,
  THROTTLE_SETTING_KEYS,
  THROTTLE_SETTING_SPECS,
  throttleSettingEnv,
  type ThrottleSettingKey,
  type ThrottleSettings,
  type ThrottleSettingSpec,
} from './throttle-settings.js';
