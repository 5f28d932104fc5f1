import { ReasonCode } from '@fleetward/protocol';
import type { Packet } from 'mqtt-packet';

/**
 * Checks mqtt-packet leaves to the receiver, as pure functions of a decoded packet and its bytes.
 * Each returns the MQTT 5 reason code of the first problem found, or undefined.
 */

type PropertyName = string;

/** Properties a client may send, by packet (MQTT 5 table 2-4); any other one is malformed (MQTT 2.2.2.2). */
const allowedProperties: Readonly<Record<string, ReadonlySet<PropertyName>>> = {
  connect: new Set([
    'sessionExpiryInterval', 'receiveMaximum', 'maximumPacketSize', 'topicAliasMaximum', 'requestResponseInformation',
    'requestProblemInformation', 'userProperties', 'authenticationMethod', 'authenticationData',
  ]),
  will: new Set(['willDelayInterval', 'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'userProperties']),
  // subscriptionIdentifier is decoded so that MQTT-3.3.4-6 can refuse it as a protocol error.
  publish: new Set(['payloadFormatIndicator', 'messageExpiryInterval', 'topicAlias', 'responseTopic', 'correlationData', 'userProperties', 'subscriptionIdentifier', 'contentType']),
  puback: new Set(['reasonString', 'userProperties']),
  pubrec: new Set(['reasonString', 'userProperties']),
  pubrel: new Set(['reasonString', 'userProperties']),
  pubcomp: new Set(['reasonString', 'userProperties']),
  subscribe: new Set(['subscriptionIdentifier', 'userProperties']),
  unsubscribe: new Set(['userProperties']),
  disconnect: new Set(['sessionExpiryInterval', 'reasonString', 'userProperties', 'serverReference']),
  auth: new Set(['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties']),
};

/** Properties that must not be zero (MQTT 3.1.2.11.3, 3.1.2.11.4, 3.8.2.1.2). */
const nonZero: ReadonlySet<PropertyName> = new Set(['receiveMaximum', 'maximumPacketSize', 'subscriptionIdentifier']);

type Properties = Readonly<Record<string, unknown>>;

/** The property sets of a packet, each under the allowlist that applies to it. */
function propertySets(packet: Packet): [string, Properties | undefined][] {
  if (packet.cmd === 'connect') return [['connect', packet.properties], ['will', packet.will?.properties]];
  return [[packet.cmd, (packet as { properties?: Properties }).properties]];
}

/** MQTT 5 property rules: allowed for the packet, at most once unless repeatable, well typed. */
export function checkProperties(packet: Packet): number | undefined {
  for (const [kind, properties] of propertySets(packet)) {
    if (properties === undefined) continue;
    const allowed = allowedProperties[kind];
    for (const [name, value] of Object.entries(properties)) {
      if (allowed?.has(name) !== true) return ReasonCode.MalformedPacket;
      if (name === 'userProperties') {
        if (!validUserProperties(value)) return ReasonCode.MalformedPacket;
        continue;
      }
      // "It is a Protocol Error to include the ... more than once" (every property but these two).
      if (Array.isArray(value)) return ReasonCode.ProtocolError;
      if (value === null || value === undefined || (typeof value === 'number' && value < 0)) return ReasonCode.MalformedPacket;
      if (value === 0 && nonZero.has(name)) return ReasonCode.ProtocolError;
    }
  }
  if (packet.cmd === 'connect' && packet.properties?.authenticationData !== undefined && packet.properties.authenticationMethod === undefined) {
    return ReasonCode.ProtocolError;
  }
  return undefined;
}

function validUserProperties(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  for (const entry of Object.values(value)) {
    const values: unknown[] = Array.isArray(entry) ? entry : [entry];
    for (const item of values) if (typeof item !== 'string') return false;
  }
  return true;
}

/**
 * Ill-formed UTF-8 (MQTT-1.5.4-1, 3.1.1 MQTT-1.5.3-1) and U+0000 (MQTT-1.5.4-2, 3.1.1 MQTT-1.5.3-2)
 * make a packet malformed. mqtt-packet decodes ill-formed bytes to U+FFFD, so a string holding
 * U+FFFD is valid only if its UTF-8 encoding appears in the packet's bytes.
 */
export function hasIllFormedUtf8(strings: Iterable<string | undefined>, bytes: Buffer): boolean {
  for (const text of strings) {
    if (text === undefined) continue;
    if (text.includes('\u0000')) return true;
    if (text.includes('\ufffd') && bytes.indexOf(Buffer.from(text, 'utf8')) === -1) return true;
  }
  return false;
}

/** The UTF-8 strings of a packet: its fields, then the string values of its properties. */
export function packetStrings(packet: Packet): (string | undefined)[] {
  const strings = fieldStrings(packet);
  for (const [, properties] of propertySets(packet)) {
    if (properties === undefined) continue;
    for (const [name, value] of Object.entries(properties)) {
      if (typeof value === 'string') strings.push(value);
      else if (name === 'userProperties' && typeof value === 'object' && value !== null) {
        for (const [key, entry] of Object.entries(value)) {
          strings.push(key);
          for (const item of Array.isArray(entry) ? (entry as unknown[]) : [entry]) if (typeof item === 'string') strings.push(item);
        }
      }
    }
  }
  return strings;
}

function fieldStrings(packet: Packet): (string | undefined)[] {
  if (packet.cmd === 'connect') return [packet.clientId, packet.username, packet.will?.topic];
  if (packet.cmd === 'publish') return [packet.topic];
  if (packet.cmd === 'subscribe') return packet.subscriptions.map((subscription) => subscription.topic);
  if (packet.cmd === 'unsubscribe') return [...packet.unsubscriptions];
  return [];
}

/**
 * Remaining Lengths fixed by the spec that mqtt-packet does not check: PINGREQ has no body
 * (MQTT 3.12.1), a 3.1.1 DISCONNECT none (3.1.1 §3.14.1) and a 3.1.1 acknowledgement two bytes.
 */
export function hasWrongLength(type: number, remainingLength: number, version: 4 | 5 | undefined): boolean {
  switch (type) {
    case 12:
      return remainingLength !== 0;
    case 14:
      return version !== 5 && remainingLength !== 0;
    case 4:
    case 5:
    case 6:
    case 7:
      return version === 5 ? remainingLength < 2 : remainingLength !== 2;
    default:
      return false;
  }
}
