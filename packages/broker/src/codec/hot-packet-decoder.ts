import type { IConnectPacket, IDisconnectPacket, IPingreqPacket, IPublishPacket, Packet } from 'mqtt-packet';
import type { Frame } from './frame-reader.js';

/**
 * The packets of the hot path decoded in place, without mqtt-packet: CONNECT without properties,
 * PUBLISH without properties, the four acknowledgements with a bare Packet Identifier, PINGREQ and
 * the 3.1.1 DISCONNECT. The
 * packet objects are those mqtt-packet's parser makes, field for field (the property tests hold
 * them to it), and a PUBLISH payload is a view of the frame, as mqtt-packet's is.
 *
 * Anything else, or anything unusual (properties, a reason code, a short body, reserved flags),
 * returns undefined: the caller hands the frame to mqtt-packet, so every error and quirk of its
 * parser is kept by construction.
 */
export function decodeHotPacket(frame: Frame, version: 4 | 5 | undefined): Packet | undefined {
  const bytes = frame.bytes;
  const first = bytes[0] as number;
  // Before the CONNECT the version is unknown; a second CONNECT is mqtt-packet's to decode (and refused).
  if (version === undefined) return frame.type === 1 && first === 0x10 ? decodeConnect(bytes, frame.remainingLength) : undefined;
  switch (frame.type) {
    case 3:
      return decodePublish(bytes, first, frame.remainingLength, version);
    case 4:
    case 5:
    case 7:
      // MQTT 2.2.2: PUBACK, PUBREC and PUBCOMP have flags 0000.
      return (first & 0x0f) === 0 ? decodeAcknowledgement(bytes, first, frame.remainingLength, version) : undefined;
    case 6:
      // PUBREL has flags 0010.
      return (first & 0x0f) === 0x02 ? decodeAcknowledgement(bytes, first, frame.remainingLength, version) : undefined;
    case 12:
      return first === 0xc0 && frame.remainingLength === 0 ? emptyPacket('pingreq') : undefined;
    case 14:
      return first === 0xe0 && frame.remainingLength === 0 && version === 4 ? emptyPacket('disconnect') : undefined;
    default:
      return undefined;
  }
}

function decodePublish(bytes: Buffer, first: number, remainingLength: number, version: 4 | 5): IPublishPacket | undefined {
  const qos = (first >> 1) & 0x03;
  if (qos === 3) return undefined;
  const body = bytes.length - remainingLength;
  const end = bytes.length;
  if (body + 2 > end) return undefined;
  const topicEnd = body + 2 + bytes.readUInt16BE(body);
  let offset = topicEnd;
  if (qos > 0) offset += 2;
  // MQTT 5: only a Property Length of 0 (one byte, 0x00) takes this path.
  if (version === 5) offset += 1;
  if (offset > end || (version === 5 && bytes[offset - 1] !== 0)) return undefined;
  const packet = {
    cmd: 'publish',
    retain: (first & 0x01) !== 0,
    qos,
    dup: (first & 0x08) !== 0,
    length: remainingLength,
    topic: bytes.toString('utf8', body + 2, topicEnd),
    payload: bytes.subarray(offset, end),
  } as IPublishPacket & { length: number };
  if (qos > 0) packet.messageId = bytes.readUInt16BE(topicEnd);
  return packet;
}

/** An acknowledgement of exactly a Packet Identifier (3.1.1, or MQTT 5 with reason code 0x00 omitted: MQTT-3.4.2-1). */
function decodeAcknowledgement(bytes: Buffer, first: number, remainingLength: number, version: 4 | 5): Packet | undefined {
  if (remainingLength !== 2 || bytes.length !== 4) return undefined;
  const packet: Record<string, unknown> = {
    cmd: ACKNOWLEDGEMENTS[first >> 4],
    retain: false,
    qos: (first >> 1) & 0x03,
    dup: false,
    length: 2,
    topic: null,
    payload: null,
    messageId: bytes.readUInt16BE(2),
  };
  if (version === 5) packet.reasonCode = 0;
  return packet as unknown as Packet;
}

const ACKNOWLEDGEMENTS: Readonly<Record<number, string>> = { 4: 'puback', 5: 'pubrec', 6: 'pubrel', 7: 'pubcomp' };

function emptyPacket(cmd: 'pingreq' | 'disconnect'): IPingreqPacket | IDisconnectPacket {
  return { cmd, retain: false, qos: 0, dup: false, length: 0, topic: null, payload: null } as unknown as IPingreqPacket;
}

const CONNECT_FLAG_USER_NAME = 0x80;
const CONNECT_FLAG_PASSWORD = 0x40;
const CONNECT_FLAG_WILL_RETAIN = 0x20;
const CONNECT_FLAG_WILL_QOS = 0x18;
const CONNECT_FLAG_WILL = 0x04;
const CONNECT_FLAG_CLEAN = 0x02;
const CONNECT_FLAG_RESERVED = 0x01;

/**
 * A CONNECT of protocol name MQTT at level 4, or 5 with no CONNECT and no Will properties, whose
 * fields fill its body exactly. Anything else is mqtt-packet's (3.1, MQIsdp, properties, reserved
 * or contradictory flags, trailing bytes).
 */
function decodeConnect(bytes: Buffer, remainingLength: number): IConnectPacket | undefined {
  const end = bytes.length;
  let offset = end - remainingLength;
  // Protocol Name "MQTT" (MQTT 3.1.2.1), then the level and the flags.
  if (offset + 10 > end || bytes.readUInt32BE(offset) !== 0x0004_4d51 || bytes.readUInt16BE(offset + 4) !== 0x5454) return undefined;
  const version = bytes[offset + 6] as number;
  const flags = bytes[offset + 7] as number;
  if (version !== 4 && version !== 5) return undefined;
  const will = (flags & CONNECT_FLAG_WILL) !== 0;
  const willQos = (flags & CONNECT_FLAG_WILL_QOS) >> 3;
  if ((flags & CONNECT_FLAG_RESERVED) !== 0 || willQos === 3 || (!will && (flags & (CONNECT_FLAG_WILL_RETAIN | CONNECT_FLAG_WILL_QOS)) !== 0)) return undefined;
  const keepalive = bytes.readUInt16BE(offset + 8);
  offset += 10;
  if (version === 5) {
    if (offset >= end || bytes[offset] !== 0) return undefined;
    offset += 1;
  }
  const reader = new FieldReader(bytes, offset);
  const clientId = reader.string();
  if (clientId === undefined) return undefined;
  const packet = {
    cmd: 'connect',
    retain: false,
    qos: 0,
    dup: false,
    length: remainingLength,
    topic: null,
    payload: null,
    protocolId: 'MQTT',
    protocolVersion: version,
  } as unknown as IConnectPacket & { -readonly [K in keyof IConnectPacket]: IConnectPacket[K] };
  if (will) {
    if (version === 5 && !reader.emptyProperties()) return undefined;
    const topic = reader.string();
    const payload = reader.binary();
    if (topic === undefined || payload === undefined) return undefined;
    packet.will = { retain: (flags & CONNECT_FLAG_WILL_RETAIN) !== 0, qos: willQos as 0 | 1 | 2, topic, payload };
  }
  packet.clean = (flags & CONNECT_FLAG_CLEAN) !== 0;
  packet.keepalive = keepalive;
  packet.clientId = clientId;
  if ((flags & CONNECT_FLAG_USER_NAME) !== 0) {
    const username = reader.string();
    if (username === undefined) return undefined;
    packet.username = username;
  }
  if ((flags & CONNECT_FLAG_PASSWORD) !== 0) {
    const password = reader.binary();
    if (password === undefined) return undefined;
    packet.password = password;
  }
  return reader.offset === end ? packet : undefined;
}

/** Length-prefixed fields of a packet body (MQTT 1.5.4, 1.5.6); undefined when one overruns the body. */
class FieldReader {
  readonly #bytes: Buffer;
  offset: number;

  constructor(bytes: Buffer, offset: number) {
    this.#bytes = bytes;
    this.offset = offset;
  }

  string(): string | undefined {
    const start = this.#fieldStart();
    return start === undefined ? undefined : this.#bytes.toString('utf8', start, this.offset);
  }

  /** Binary Data as a view of the frame, as mqtt-packet gives it. */
  binary(): Buffer | undefined {
    const start = this.#fieldStart();
    return start === undefined ? undefined : this.#bytes.subarray(start, this.offset);
  }

  /** An MQTT 5 Property Length of 0. */
  emptyProperties(): boolean {
    if (this.offset >= this.#bytes.length || this.#bytes[this.offset] !== 0) return false;
    this.offset += 1;
    return true;
  }

  #fieldStart(): number | undefined {
    const bytes = this.#bytes;
    if (this.offset + 2 > bytes.length) return undefined;
    const start = this.offset + 2;
    const end = start + bytes.readUInt16BE(this.offset);
    if (end > bytes.length) return undefined;
    this.offset = end;
    return start;
  }
}
