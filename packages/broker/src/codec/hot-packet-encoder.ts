import type { IConnackPacket, IPublishPacket, Packet } from 'mqtt-packet';

/**
 * The packets of the hot path encoded in one allocation, without mqtt-packet's piecewise
 * `generate`: PUBLISH without properties, the four acknowledgements without properties, PINGRESP
 * and the 3.1.1 CONNACK. The bytes are exactly those `generate` makes (property-tested against it);
 * anything else, or anything `generate` would refuse, returns undefined and is left to `generate`.
 */
export function encodeHotPacket(packet: Packet, version: 4 | 5): Buffer | undefined {
  switch (packet.cmd) {
    case 'publish':
      return packet.properties === undefined || version === 4 ? encodePlainPublish(packet, version) : undefined;
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      // generate cannot encode a PUBREL with DUP (it throws); that one is left to it, to fail the same way.
      if (packet.cmd === 'pubrel' && Boolean((packet as { dup?: unknown }).dup)) return undefined;
      return encodeAcknowledgement(packet.cmd, packet.messageId, packet.reasonCode, packet.properties, version);
    case 'pingresp':
      return PINGRESP;
    case 'connack':
      return version === 4 ? encodeConnack311(packet) : undefined;
    default:
      return undefined;
  }
}

/** PINGRESP never changes; writing the same bytes to many sockets is safe, nothing mutates them. */
const PINGRESP = Buffer.from([0xd0, 0x00]);

const ACKNOWLEDGEMENT_HEADERS = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const;

function isByte(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xff;
}

function isPacketId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff;
}

/** The bytes a Variable Byte Integer takes (MQTT 1.5.5). */
export function variableByteIntegerLength(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : 4;
}

/** Writes a Variable Byte Integer at `offset`; returns the offset after it. */
export function writeVariableByteInteger(bytes: Buffer, offset: number, value: number): number {
  let rest = value;
  do {
    let byte = rest % 0x80;
    rest = Math.floor(rest / 0x80);
    if (rest > 0) byte |= 0x80;
    bytes[offset++] = byte;
  } while (rest > 0);
  return offset;
}

/**
 * A PUBLISH with no properties (or any, for 3.1.1, where there are none to write): fixed header,
 * topic, Packet Identifier for QoS 1 and 2, MQTT 5's empty Property Length, payload.
 */
export function encodePlainPublish(packet: IPublishPacket, version: 4 | 5): Buffer | undefined {
  const { topic, payload, qos, messageId } = packet;
  if (typeof topic !== 'string' || !Buffer.isBuffer(payload) || (qos !== 0 && qos !== 1 && qos !== 2)) return undefined;
  if (qos > 0 && !isPacketId(messageId)) return undefined;
  const topicLength = Buffer.byteLength(topic);
  if (topicLength > 0xffff) return undefined;
  const remainingLength = 2 + topicLength + (qos > 0 ? 2 : 0) + (version === 5 ? 1 : 0) + payload.length;
  if (remainingLength > 268_435_455) return undefined;
  const bytes = Buffer.allocUnsafe(1 + variableByteIntegerLength(remainingLength) + remainingLength);
  // MQTT 3.3.1: DUP is bit 3, QoS bits 2-1, RETAIN bit 0 (set as mqtt-packet sets them: when truthy).
  bytes[0] = 0x30 | (qos << 1) | (packet.dup ? 0x08 : 0) | (packet.retain ? 0x01 : 0);
  let offset = writeVariableByteInteger(bytes, 1, remainingLength);
  bytes[offset++] = topicLength >> 8;
  bytes[offset++] = topicLength & 0xff;
  offset += bytes.write(topic, offset, 'utf8');
  if (qos > 0) {
    bytes[offset++] = (messageId as number) >> 8;
    bytes[offset++] = (messageId as number) & 0xff;
  }
  if (version === 5) bytes[offset++] = 0;
  payload.copy(bytes, offset);
  return bytes;
}

/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP without properties. MQTT 5 omits a reason code of 0x00 (and the
 * Property Length) (MQTT-3.4.2-1); any other reason code is followed by an empty Property Length.
 */
function encodeAcknowledgement(
  cmd: keyof typeof ACKNOWLEDGEMENT_HEADERS,
  messageId: unknown,
  reasonCode: unknown,
  properties: unknown,
  version: 4 | 5,
): Buffer | undefined {
  if (!isPacketId(messageId)) return undefined;
  const header = ACKNOWLEDGEMENT_HEADERS[cmd];
  if (version === 4 || reasonCode === 0) {
    if (version === 5 && properties !== undefined) return undefined;
    const bytes = Buffer.allocUnsafe(4);
    bytes[0] = header;
    bytes[1] = 2;
    bytes[2] = messageId >> 8;
    bytes[3] = messageId & 0xff;
    return bytes;
  }
  if (properties !== undefined || !isByte(reasonCode)) return undefined;
  const bytes = Buffer.allocUnsafe(6);
  bytes[0] = header;
  bytes[1] = 4;
  bytes[2] = messageId >> 8;
  bytes[3] = messageId & 0xff;
  bytes[4] = reasonCode;
  bytes[5] = 0;
  return bytes;
}

/** 3.1.1 CONNACK: Session Present and the return code. */
function encodeConnack311(packet: IConnackPacket): Buffer | undefined {
  const returnCode = packet.returnCode;
  if (!isByte(returnCode)) return undefined;
  return Buffer.from([0x20, 0x02, packet.sessionPresent ? 0x01 : 0x00, returnCode]);
}
