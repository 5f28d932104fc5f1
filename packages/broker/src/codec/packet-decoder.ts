import { ReasonCode } from '@fleetward/protocol';
import type { Packet } from 'mqtt-packet';
import type { Frame } from './frame-reader.js';
import { decodeHotPacket } from './hot-packet-decoder.js';
import { checkProperties, hasIllFormedUtf8, hasWrongLength, packetStrings } from './packet-rules.js';
import { parseFrame } from './shared-parser.js';

const BARE: ReadonlySet<string> = new Set(['puback', 'pubrec', 'pubrel', 'pubcomp', 'pingreq', 'disconnect']);

export type Decoded = { readonly packet: Packet } | { readonly error: number };

/**
 * Decodes one frame at a time for one connection, then applies the checks mqtt-packet leaves out.
 * The packets of the hot path are decoded in place (hot-packet-decoder.ts); the others by one
 * mqtt-packet parser shared by all connections, which learns the protocol version from the CONNECT
 * decoded first. A connection holds nothing but its version. An error is the MQTT 5 reason code to
 * close with: 0x81 Malformed Packet or 0x82 Protocol Error.
 */
export class PacketDecoder {
  #version: 4 | 5 | undefined;

  decode(frame: Frame): Decoded {
    const version = this.#version;
    if (hasWrongLength(frame.type, frame.remainingLength, version)) return { error: ReasonCode.MalformedPacket };
    const packet = decodeHotPacket(frame, version) ?? parseFrame(frame.bytes, version);
    if (packet === undefined) return { error: ReasonCode.MalformedPacket };
    if (packet.cmd === 'connect') this.#version = packet.protocolVersion === 5 ? 5 : 4;
    const problem = this.#check(packet, frame.bytes);
    return problem === undefined ? { packet } : { error: problem };
  }

  #check(packet: Packet, bytes: Buffer): number | undefined {
    // Acknowledgements, PINGREQ and DISCONNECT hold no string; without properties there is nothing to check.
    if (BARE.has(packet.cmd) && (packet as { properties?: unknown }).properties === undefined) return undefined;
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
