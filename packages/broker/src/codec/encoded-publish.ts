import { generate, type IPublishPacket } from 'mqtt-packet';
import type { Message, QoS } from '../message.js';
import { encodePlainPublish } from './hot-packet-encoder.js';

type PublishProperties = NonNullable<IPublishPacket['properties']>;

/**
 * A PUBLISH whose bytes are already made: `encodePacket` hands them out as they are (after the
 * client's Maximum Packet Size check). Immutable, so one QoS 0 packet can go to every subscriber.
 */
export class EncodedPublish implements IPublishPacket {
  readonly cmd = 'publish';
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly dup: boolean;
  readonly messageId: number | undefined;
  readonly properties: PublishProperties | undefined;
  readonly bytes: Buffer;

  constructor(template: Omit<IPublishPacket, 'cmd'>, bytes: Buffer) {
    this.topic = template.topic;
    this.payload = template.payload as Buffer;
    this.qos = template.qos;
    this.retain = template.retain;
    this.dup = template.dup;
    this.messageId = template.messageId;
    this.properties = template.properties;
    this.bytes = bytes;
  }
}

interface Template {
  readonly message: Message;
  readonly packet: EncodedPublish;
  /** Where the Packet Identifier sits in the bytes (QoS 1 and 2). */
  readonly packetIdOffset: number;
}

/** Placeholder Packet Identifier of a template; each delivery writes its own over it. */
const TEMPLATE_PACKET_ID = 1;

/**
 * One encoding per message, shared by its deliveries: the PUBLISH a message makes for a 3.1.1
 * client, or for an MQTT 5 client when nothing in it is particular to that client (no Topic Alias,
 * Subscription Identifier or Message Expiry Interval: the caller decides). A QoS 0 delivery gets
 * the very same packet; a QoS 1 or 2 delivery a copy with its Packet Identifier (and DUP) patched
 * in, one memcpy instead of an encoding.
 *
 * The cache keeps the last message per protocol version, QoS and RETAIN flag: a message fans out
 * to its subscribers in one go, so that is where the sharing is. It pins at most twelve messages.
 */
export class SharedPublishEncodings {
  readonly #templates: (Template | undefined)[] = new Array<Template | undefined>(12).fill(undefined);

  packet(message: Message, qos: QoS, retain: boolean, version: 4 | 5, packetId: number | undefined, dup: boolean): EncodedPublish {
    const slot = (version - 4) * 6 + qos * 2 + (retain ? 1 : 0);
    let template = this.#templates[slot];
    if (template?.message !== message) {
      template = makeTemplate(message, qos, retain, version);
      this.#templates[slot] = template;
    }
    if (qos === 0) return template.packet;
    return withPacketId(template, packetId as number, dup);
  }
}

function makeTemplate(message: Message, qos: QoS, retain: boolean, version: 4 | 5): Template {
  const properties = version === 5 && message.properties !== undefined ? ({ ...message.properties } as PublishProperties) : undefined;
  const fields = {
    topic: message.topic,
    payload: message.payload,
    qos,
    retain,
    dup: false,
    messageId: qos > 0 ? TEMPLATE_PACKET_ID : undefined,
    properties,
  };
  const packet = { cmd: 'publish' as const, ...fields };
  const bytes = (properties === undefined ? encodePlainPublish(packet, version) : undefined) ?? generate(packet, { protocolVersion: version });
  // The fixed header is the first byte and the Remaining Length's one to four bytes; then the topic.
  let fixedHeaderLength = 2;
  while (((bytes[fixedHeaderLength - 1] as number) & 0x80) !== 0) fixedHeaderLength++;
  const packetIdOffset = fixedHeaderLength + 2 + Buffer.byteLength(message.topic);
  return { message, packet: new EncodedPublish(fields, bytes), packetIdOffset };
}

function withPacketId(template: Template, packetId: number, dup: boolean): EncodedPublish {
  const source = template.packet;
  const bytes = Buffer.allocUnsafe(source.bytes.length);
  source.bytes.copy(bytes);
  // MQTT-3.3.1-1: DUP only on a resend; MQTT-2.2.1-3: the flight's own identifier.
  if (dup) bytes[0] = (bytes[0] as number) | 0x08;
  bytes[template.packetIdOffset] = packetId >> 8;
  bytes[template.packetIdOffset + 1] = packetId & 0xff;
  return new EncodedPublish({ ...source, dup, messageId: packetId }, bytes);
}
