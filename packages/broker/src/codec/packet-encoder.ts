import { generate, type Packet } from 'mqtt-packet';
import { EncodedPublish } from './encoded-publish.js';
import { encodeHotPacket } from './hot-packet-encoder.js';

/** The properties a server may drop to fit a client's Maximum Packet Size (MQTT-3.4.2-2, -3 and alike). */
const DROPPABLE = ['reasonString', 'userProperties'] as const;

/**
 * Encodes a packet for one connection. Returns undefined when it cannot be sent within the
 * client's Maximum Packet Size even without its Reason String and User Properties: the caller
 * then discards it (MQTT-3.1.2-24, MQTT-3.1.2-25).
 *
 * A PUBLISH encoded once for all its deliveries comes with its bytes; the packets of the hot path
 * are encoded in one allocation (hot-packet-encoder.ts); mqtt-packet's `generate` does the rest.
 */
export function encodePacket(packet: Packet, version: 4 | 5, maximumPacketSize: number): Buffer | undefined {
  if (packet instanceof EncodedPublish) return packet.bytes.length <= maximumPacketSize ? packet.bytes : undefined;
  const bytes = encodeHotPacket(packet, version) ?? generate(packet, { protocolVersion: version });
  if (bytes.length <= maximumPacketSize) return bytes;
  if (packet.cmd === 'publish' || packet.cmd === 'connect') return undefined;
  const properties = (packet as { properties?: Record<string, unknown> }).properties;
  if (properties === undefined || !DROPPABLE.some((name) => name in properties)) return undefined;
  const trimmed = { ...properties };
  for (const name of DROPPABLE) delete trimmed[name];
  const smaller = generate({ ...packet, properties: trimmed } as Packet, { protocolVersion: version });
  return smaller.length <= maximumPacketSize ? smaller : undefined;
}
