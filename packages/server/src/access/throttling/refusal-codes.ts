import { ReasonCode } from '@fleetward/protocol';

/** Why a raw TCP connection was closed before its TLS handshake (no MQTT packet is possible yet). */
export type HandshakeRefusal = 'address-banned' | 'handshake-rate' | 'handshake-budget';
/** Why a CONNECT was refused by the throttles (after TLS, before the session is opened). */
export type ConnectRefusal = 'banned' | 'flapping' | 'connect-rate' | 'server-full' | 'thing-full';
/**
 * Why a PUBLISH was refused. `rate-disconnect`: the device kept publishing over its rate after
 * being refused, so the connection is closed instead of refusing message after message.
 */
export type PublishRefusal = 'message-rate' | 'byte-rate' | 'payload-too-large' | 'rate-disconnect';
export type SubscribeRefusal = 'too-many-subscriptions';
/** A publish or subscription the device's policies refused: counted and summarized with the rest. */
export type PolicyRefusal = 'publish-denied' | 'subscribe-denied';

/** Every refusal the throttles take, count and audit. */
export type ThrottleRefusal = HandshakeRefusal | ConnectRefusal | PublishRefusal | SubscribeRefusal | PolicyRefusal;

/**
 * Everything `refusalResponse` maps: the throttles' refusals, plus the two outcomes the gateway
 * reports through the same table (a policy denial, and the older connection of a takeover).
 */
export type Refusal = ThrottleRefusal | 'not-authorized' | 'session-taken-over';

export const THROTTLE_REFUSALS: readonly ThrottleRefusal[] = [
  'address-banned', 'handshake-rate', 'handshake-budget',
  'banned', 'flapping', 'connect-rate', 'server-full', 'thing-full',
  'message-rate', 'byte-rate', 'payload-too-large', 'rate-disconnect',
  'too-many-subscriptions',
  'publish-denied', 'subscribe-denied',
];

export type MqttProtocolVersion = 4 | 5;

/**
 * What the device sees. `code` is an MQTT 5 reason code, or for a 3.1.1 CONNACK its return code
 * (3.1.1 table 3.1) and for a 3.1.1 SUBACK its failure code 0x80.
 * - `connack`: refuse the CONNECT with this code, then close.
 * - `puback`: refuse a QoS 1/2 PUBLISH in its PUBACK/PUBREC and stay connected (QoS 0: drop it).
 * - `suback`: refuse the topic filter in SUBACK and stay connected.
 * - `disconnect`: send a server DISCONNECT with this code, then close.
 * - `close`: close the network connection without a packet.
 */
export type RefusalResponse =
  | { readonly packet: 'connack' | 'puback' | 'suback' | 'disconnect'; readonly code: number; readonly reasonString: string }
  | { readonly packet: 'close'; readonly reasonString: string };

type Table = Readonly<Record<Refusal, RefusalResponse>>;

const close = (reasonString: string): RefusalResponse => ({ packet: 'close', reasonString });
const connack = (code: number, reasonString: string): RefusalResponse => ({ packet: 'connack', code, reasonString });
const disconnect = (code: number, reasonString: string): RefusalResponse => ({ packet: 'disconnect', code, reasonString });

/**
 * MQTT 5. CONNACK codes are the most specific table 3-1 offers (0x8A Banned, 0x9F Connection rate
 * exceeded, 0x89 Server busy), all accepted by the engine's `admit`. A rate refusal of one PUBLISH
 * is 0x97 Quota exceeded: table 3-4 has no 0x96 or 0x95 for PUBACK; those are DISCONNECT codes
 * (table 3-10), used when the connection is closed for them.
 */
const MQTT5: Table = Object.freeze({
  'address-banned': close('source address banned'),
  'handshake-rate': close('too many TLS handshakes from this source'),
  'handshake-budget': close('node TLS handshake budget spent'),
  banned: connack(ReasonCode.Banned, 'banned'),
  flapping: connack(ReasonCode.Banned, 'banned: too many connects (flapping)'),
  'connect-rate': connack(ReasonCode.ConnectionRateExceeded, 'connection rate exceeded'),
  'server-full': connack(ReasonCode.ServerBusy, 'server busy: connection limit reached'),
  'thing-full': connack(ReasonCode.QuotaExceeded, 'too many connections for this thing'),
  'not-authorized': connack(ReasonCode.NotAuthorized, 'not authorized'),
  'message-rate': { packet: 'puback', code: ReasonCode.QuotaExceeded, reasonString: 'message rate limit exceeded' },
  'byte-rate': { packet: 'puback', code: ReasonCode.QuotaExceeded, reasonString: 'byte rate limit exceeded' },
  // Like the engine's own Maximum Packet Size check: a packet the server will not take closes the connection.
  'payload-too-large': disconnect(ReasonCode.PacketTooLarge, 'payload too large'),
  'rate-disconnect': disconnect(ReasonCode.MessageRateTooHigh, 'message rate too high'),
  'too-many-subscriptions': { packet: 'suback', code: ReasonCode.QuotaExceeded, reasonString: 'subscription limit reached' },
  'publish-denied': { packet: 'puback', code: ReasonCode.NotAuthorized, reasonString: 'not authorized' },
  'subscribe-denied': { packet: 'suback', code: ReasonCode.NotAuthorized, reasonString: 'not authorized' },
  'session-taken-over': disconnect(ReasonCode.SessionTakenOver, 'session taken over'),
});

/** 3.1.1 CONNACK return codes (3.1.1 table 3.1) and the SUBACK failure code (3.1.1 §3.9.3). */
const NOT_AUTHORIZED_311 = 5;
const SERVER_UNAVAILABLE_311 = 3;
const SUBACK_FAILURE_311 = 0x80;

/**
 * MQTT 3.1.1, the closest behaviour. A ban says "not authorized" (5) so that the client backs off;
 * rate and capacity refusals say "server unavailable" (3), which clients retry later. 3.1.1 has no
 * negative PUBACK: a refused PUBLISH closes the connection (MQTT-3.3.5-2), and so does every
 * server-side reason for a DISCONNECT (3.1.1 has no server DISCONNECT).
 */
const MQTT311: Table = Object.freeze({
  ...MQTT5,
  banned: connack(NOT_AUTHORIZED_311, 'banned'),
  flapping: connack(NOT_AUTHORIZED_311, 'banned: too many connects (flapping)'),
  'not-authorized': connack(NOT_AUTHORIZED_311, 'not authorized'),
  'connect-rate': connack(SERVER_UNAVAILABLE_311, 'connection rate exceeded'),
  'server-full': connack(SERVER_UNAVAILABLE_311, 'server busy: connection limit reached'),
  'thing-full': connack(SERVER_UNAVAILABLE_311, 'too many connections for this thing'),
  'message-rate': close('message rate limit exceeded'),
  'byte-rate': close('byte rate limit exceeded'),
  'payload-too-large': close('payload too large'),
  'rate-disconnect': close('message rate too high'),
  'too-many-subscriptions': { packet: 'suback', code: SUBACK_FAILURE_311, reasonString: 'subscription limit reached' },
  'publish-denied': close('not authorized'),
  'subscribe-denied': { packet: 'suback', code: SUBACK_FAILURE_311, reasonString: 'not authorized' },
  'session-taken-over': close('session taken over'),
});

/** What a device speaking `protocolVersion` (4 = 3.1.1, 5 = 5.0) sees for a refusal. Allocation-free. */
export function refusalResponse(refusal: Refusal, protocolVersion: MqttProtocolVersion): RefusalResponse {
  return protocolVersion === 5 ? MQTT5[refusal] : MQTT311[refusal];
}
