import { ReasonCode } from '@fleetward/protocol';
import { parser as createParser, type Packet, type Parser } from 'mqtt-packet';
import type { Frame } from './frame-reader.js';
import { checkProperties, hasIllFormedUtf8, hasWrongLength, packetStrings } from './packet-rules.js';

export type Decoded = { readonly packet: Packet } | { readonly error: number };

/**
 * Decodes one frame at a time with a per-connection mqtt-packet streaming parser, which takes the
 * protocol version from the CONNECT it decodes first, then applies the checks mqtt-packet leaves
 * out. An error is the MQTT 5 reason code to close with: 0x81 Malformed Packet or 0x82 Protocol Error.
 */
export class PacketDecoder {
  readonly #parser: Parser = createParser();
  #version: 4 | 5 | undefined;
  #packet: Packet | undefined;
  #failed = false;

  constructor() {
    this.#parser.on('packet', (packet: Packet) => {
      this.#packet = packet;
    });
    this.#parser.on('error', () => {
      this.#failed = true;
    });
  }

  decode(frame: Frame): Decoded {
    if (hasWrongLength(frame.type, frame.remainingLength, this.#version)) return { error: ReasonCode.MalformedPacket };
    this.#packet = undefined;
    this.#failed = false;
    this.#parser.parse(frame.bytes);
    const packet = this.#packet as Packet | undefined;
    if (this.#failed || packet === undefined) return { error: ReasonCode.MalformedPacket };
    if (packet.cmd === 'connect') this.#version = packet.protocolVersion === 5 ? 5 : 4;
    const problem = this.#check(packet, frame.bytes);
    return problem === undefined ? { packet } : { error: problem };
  }

  #check(packet: Packet, bytes: Buffer): number | undefined {
    if (packet.cmd === 'publish' && packet.properties === undefined) {
      // The hot path: one topic, no properties.
      const topic = packet.topic;
      return topic.includes('\u0000') || (topic.includes('\ufffd') && hasIllFormedUtf8([topic], bytes)) ? ReasonCode.MalformedPacket : undefined;
    }
    if (this.#version === 5) {
      const problem = checkProperties(packet);
      if (problem !== undefined) return problem;
    }
    return hasIllFormedUtf8(packetStrings(packet), bytes) ? ReasonCode.MalformedPacket : undefined;
  }
}
