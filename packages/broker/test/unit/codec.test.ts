import fc from 'fast-check';
import { generate, parser as createParser, type IPublishPacket, type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { EncodedPublish, SharedPublishEncodings } from '../../src/codec/encoded-publish.js';
import type { Frame } from '../../src/codec/frame-reader.js';
import { decodeHotPacket } from '../../src/codec/hot-packet-decoder.js';
import { encodeHotPacket } from '../../src/codec/hot-packet-encoder.js';
import { PacketDecoder, type Decoded } from '../../src/codec/packet-decoder.js';
import { encodePacket } from '../../src/codec/packet-encoder.js';
import { checkProperties, hasIllFormedUtf8, hasWrongLength, packetStrings } from '../../src/codec/packet-rules.js';
import { buildPublish } from '../../src/connection/outgoing-publish.js';
import type { Delivery, Message } from '../../src/message.js';

// --- Arbitraries: valid packets as an MQTT client or server would send them -------------------

const version = fc.constantFrom(4 as const, 5 as const);
const text = fc.string({ maxLength: 12 });
/** Any UTF-16, lone surrogates included: encoders must agree on them too. */
const anyText = fc.string({ unit: 'binary', maxLength: 12 });
const topic = fc.oneof(fc.array(fc.constantFrom('a', 'b', 'ü', 'sensors', '$x', '😀', ''), { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/')), anyText);
const packetId = fc.integer({ min: 0, max: 0xffff });
const qos = fc.constantFrom(0 as const, 1 as const, 2 as const);
const payload = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 120, maxLength: 20_000 })).map((bytes) => Buffer.from(bytes));
const userProperties = fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.oneof(fc.string({ maxLength: 4 }), fc.array(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 3 })), { maxKeys: 3 });
const publishProperties = fc.record(
  {
    payloadFormatIndicator: fc.boolean(),
    messageExpiryInterval: fc.nat(),
    topicAlias: fc.integer({ min: 1, max: 0xffff }),
    responseTopic: text,
    correlationData: fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
    userProperties,
    subscriptionIdentifier: fc.oneof(fc.integer({ min: 1, max: 0x0fffffff }), fc.array(fc.integer({ min: 1, max: 0x0fffffff }), { minLength: 1, maxLength: 3 })),
    contentType: text,
  },
  { requiredKeys: [] },
);
const acknowledgementProperties = fc.record({ reasonString: text, userProperties }, { requiredKeys: [] });

const publish: fc.Arbitrary<IPublishPacket> = fc
  .record({ topic, payload, qos, retain: fc.boolean(), dup: fc.boolean(), messageId: packetId, properties: fc.option(publishProperties, { nil: undefined }) })
  .map(({ messageId, ...fields }) => ({ cmd: 'publish' as const, ...fields, messageId: fields.qos > 0 ? messageId : undefined }));

const acknowledgement: fc.Arbitrary<Packet> = fc.record({
  cmd: fc.constantFrom('puback' as const, 'pubrec' as const, 'pubrel' as const, 'pubcomp' as const),
  messageId: packetId,
  reasonCode: fc.constantFrom(0, 0x10, 0x80, 0x87, 0x92),
  dup: fc.boolean(),
  properties: fc.option(acknowledgementProperties, { nil: undefined }),
});

const serverPacket: fc.Arbitrary<Packet> = fc.oneof(
  publish,
  acknowledgement,
  fc.constant({ cmd: 'pingresp' as const }),
  fc.record({ cmd: fc.constant('connack' as const), returnCode: fc.integer({ min: 0, max: 5 }), reasonCode: fc.constantFrom(0, 0x80, 0x87), sessionPresent: fc.boolean() }),
  fc.record({ cmd: fc.constant('suback' as const), messageId: packetId, granted: fc.array(fc.constantFrom(0, 1, 2, 0x80), { minLength: 1, maxLength: 3 }) }),
);

const connect: fc.Arbitrary<Packet> = fc.record(
  {
    cmd: fc.constant('connect' as const),
    protocolId: fc.constant('MQTT' as const),
    protocolVersion: version,
    clientId: anyText,
    clean: fc.boolean(),
    keepalive: fc.integer({ min: 0, max: 0xffff }),
    username: fc.option(anyText, { nil: undefined }),
    password: fc.option(payload, { nil: undefined }),
    will: fc.option(fc.record({ topic, payload, qos, retain: fc.boolean() }), { nil: undefined }),
    properties: fc.option(fc.record({ sessionExpiryInterval: fc.nat(), receiveMaximum: fc.integer({ min: 1, max: 0xffff }) }, { requiredKeys: [] }), { nil: undefined }),
  },
  { requiredKeys: ['cmd', 'protocolId', 'protocolVersion', 'clientId', 'clean', 'keepalive'] },
);

const clientPacket: fc.Arbitrary<Packet> = fc.oneof(
  publish,
  acknowledgement,
  fc.constant({ cmd: 'pingreq' as const }),
  fc.record({ cmd: fc.constant('disconnect' as const), reasonCode: fc.constantFrom(0, 0x04) }) as fc.Arbitrary<Packet>,
  fc.record({ cmd: fc.constant('subscribe' as const), messageId: packetId, subscriptions: fc.array(fc.record({ topic, qos, nl: fc.boolean(), rap: fc.boolean(), rh: fc.constantFrom(0, 1, 2) }), { minLength: 1, maxLength: 3 }) }),
  fc.record({ cmd: fc.constant('unsubscribe' as const), messageId: packetId, unsubscriptions: fc.array(topic, { minLength: 1, maxLength: 3 }) }),
);

// --- References: mqtt-packet as the engine used it before ------------------------------------

function frameOf(bytes: Buffer): Frame {
  let offset = 1;
  let remainingLength = 0;
  let multiplier = 1;
  for (;;) {
    const byte = bytes[offset++] as number;
    remainingLength += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) break;
  }
  return { bytes, type: (bytes[0] as number) >> 4, remainingLength };
}

/** A fresh mqtt-packet parser for one packet, as a connection of that version would have it. */
function parseWithMqttPacket(bytes: Buffer, protocolVersion: 4 | 5): Packet | undefined {
  const parser = createParser({ protocolVersion });
  let packet: Packet | undefined;
  let failed = false;
  parser.on('packet', (decoded: Packet) => (packet = decoded));
  parser.on('error', () => (failed = true));
  parser.parse(bytes);
  return failed ? undefined : packet;
}

/** The engine's decoder before this codec: one mqtt-packet parser per connection. */
class ReferenceDecoder {
  readonly #parser = createParser();
  #version: 4 | 5 | undefined;
  #packet: Packet | undefined;
  #failed = false;

  constructor() {
    this.#parser.on('packet', (packet: Packet) => (this.#packet = packet));
    this.#parser.on('error', () => (this.#failed = true));
  }

  decode(frame: Frame): Decoded {
    if (hasWrongLength(frame.type, frame.remainingLength, this.#version)) return { error: 0x81 };
    this.#packet = undefined;
    this.#failed = false;
    this.#parser.parse(frame.bytes);
    // Set by the parser's 'packet' listener during parse(): flow analysis cannot see that.
    const packet = this.#packet as Packet | undefined;
    if (this.#failed || packet === undefined) return { error: 0x81 };
    if (packet.cmd === 'connect') this.#version = packet.protocolVersion === 5 ? 5 : 4;
    const problem = (this.#version === 5 ? checkProperties(packet) : undefined) ?? (hasIllFormedUtf8(packetStrings(packet), frame.bytes) ? 0x81 : undefined);
    return problem === undefined ? { packet } : { error: problem };
  }
}

/** Mutations that keep a frame's framing, so that both decoders see the same frames. */
function mutate(bytes: Buffer, edits: readonly (readonly [number, number])[]): Buffer {
  const copy = Buffer.from(bytes);
  const headerLength = bytes.length - frameOf(bytes).remainingLength;
  for (const [position, value] of edits) {
    // The first byte's type nibble and the Remaining Length stay: only flags and body bytes change.
    if (position === 0) copy[0] = ((copy[0] as number) & 0xf0) | (value & 0x0f);
    else if (headerLength + position - 1 < copy.length) copy[headerLength + position - 1] = value;
  }
  return copy;
}

const PROPERTY_RUNS = { numRuns: 400 };

describe('the hot-path encoder, property-tested against mqtt-packet generate', () => {
  it('encodes every packet a server sends exactly as generate does, both protocol versions', () => {
    fc.assert(
      fc.property(serverPacket, version, (packet, protocolVersion) => {
        let expected: Buffer | undefined;
        try {
          expected = generate(packet, { protocolVersion });
        } catch {
          return; // a packet generate refuses is left to generate, which throws again
        }
        expect(encodePacket(packet, protocolVersion, Number.MAX_SAFE_INTEGER)).toEqual(expected);
        const fast = encodeHotPacket(packet, protocolVersion);
        if (fast !== undefined) expect(fast).toEqual(expected);
      }),
      PROPERTY_RUNS,
    );
  });

  it('takes the fast path for PUBLISH without properties, bare acknowledgements, PINGRESP and the 3.1.1 CONNACK', () => {
    const cases: [Packet, 4 | 5][] = [
      [{ cmd: 'publish', topic: 'a/ü', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: true, dup: true }, 5],
      [{ cmd: 'publish', topic: 'a', payload: Buffer.alloc(20_000), qos: 0, retain: false, dup: false, properties: { contentType: 'ignored in 3.1.1' } }, 4],
      [{ cmd: 'puback', messageId: 1, reasonCode: 0 }, 5],
      [{ cmd: 'pubrec', messageId: 1, reasonCode: 0x80 }, 5],
      [{ cmd: 'pubrel', messageId: 65535 }, 4],
      [{ cmd: 'pingresp' }, 5],
      [{ cmd: 'connack', returnCode: 0, sessionPresent: true }, 4],
    ];
    for (const [packet, protocolVersion] of cases) {
      expect(encodeHotPacket(packet, protocolVersion), packet.cmd).toEqual(generate(packet, { protocolVersion }));
    }
    expect(encodeHotPacket({ cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { contentType: 'c' } }, 5)).toBeUndefined();
    expect(encodeHotPacket({ cmd: 'puback', messageId: 1, reasonCode: 0, properties: { reasonString: 'r' } }, 5)).toBeUndefined();
  });

  it('keeps refusing what generate refuses, and keeps the Maximum Packet Size rule', () => {
    const noPacketId = { cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 1, retain: false, dup: false } as IPublishPacket;
    expect(() => encodePacket(noPacketId, 4, 1000)).toThrow();
    // generate cannot encode a PUBREL with DUP (it throws); the engine never sends one, and neither does the fast path.
    expect(encodeHotPacket({ cmd: 'pubrel', messageId: 1, dup: true } as Packet, 4)).toBeUndefined();
    const big: Packet = { cmd: 'publish', topic: 'a', payload: Buffer.alloc(100), qos: 0, retain: false, dup: false };
    expect(encodePacket(big, 4, 104)).toBeUndefined();
    expect(encodePacket(big, 4, 105)).toHaveLength(105);
  });
});

describe('one shared encoding per message', () => {
  const message: fc.Arbitrary<Message> = fc.record({
    topic,
    payload,
    qos,
    retain: fc.boolean(),
    properties: fc.option(fc.record({ payloadFormatIndicator: fc.boolean(), contentType: text, responseTopic: text, userProperties }, { requiredKeys: [] }), { nil: undefined }),
    expiresAt: fc.constant(undefined),
    publisher: fc.constant('publisher'),
  });

  it('makes the bytes and packet buildPublish and generate make, with each delivery\'s Packet Identifier and DUP', () => {
    fc.assert(
      fc.property(message, qos, fc.boolean(), version, fc.array(fc.tuple(fc.integer({ min: 1, max: 0xffff }), fc.boolean()), { minLength: 1, maxLength: 4 }), (msg, deliveryQos, retain, protocolVersion, flights) => {
        const encodings = new SharedPublishEncodings();
        const delivery: Delivery = { message: msg, qos: deliveryQos, retain, subscriptionIds: undefined };
        for (const [id, dup] of flights) {
          const packetId = deliveryQos > 0 ? id : undefined;
          const resend = dup && deliveryQos > 0;
          const expected = buildPublish(delivery, protocolVersion, packetId, resend, undefined, 0);
          const shared = encodings.packet(msg, deliveryQos, retain, protocolVersion, packetId, resend);
          expect(shared.bytes).toEqual(generate(expected, { protocolVersion }));
          expect({ ...shared, bytes: undefined }).toEqual({ ...expected, bytes: undefined });
          expect(encodePacket(shared, protocolVersion, Number.MAX_SAFE_INTEGER)).toBe(shared.bytes);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('gives every QoS 0 subscriber the very same packet, and a QoS 1 subscriber its own copy', () => {
    const encodings = new SharedPublishEncodings();
    const msg: Message = { topic: 't', payload: Buffer.from('hello'), qos: 1, retain: false, properties: undefined, expiresAt: undefined, publisher: 'p' };
    const first = encodings.packet(msg, 0, false, 4, undefined, false);
    expect(encodings.packet(msg, 0, false, 4, undefined, false)).toBe(first);
    const a = encodings.packet(msg, 1, false, 4, 1, false);
    const b = encodings.packet(msg, 1, false, 4, 2, false);
    expect(a.bytes).not.toBe(b.bytes);
    // 0x32, Remaining Length, topic length, 't', then the Packet Identifier.
    expect([a.bytes.readUInt16BE(5), b.bytes.readUInt16BE(5)]).toEqual([1, 2]);
    const other: Message = { ...msg, payload: Buffer.from('other') };
    expect(encodings.packet(other, 0, false, 4, undefined, false)).not.toBe(first);
    expect(first).toBeInstanceOf(EncodedPublish);
  });
});

describe('the hot-path decoder, property-tested against mqtt-packet', () => {
  it('decodes CONNECT, PUBLISH, acknowledgements, PINGREQ and DISCONNECT field for field as mqtt-packet does, both protocol versions', () => {
    fc.assert(
      fc.property(fc.oneof(clientPacket, connect), version, (packet, protocolVersion) => {
        let bytes: Buffer;
        try {
          bytes = generate(packet, { protocolVersion: packet.cmd === 'connect' ? packet.protocolVersion : protocolVersion });
        } catch {
          return;
        }
        const frame = frameOf(bytes);
        const fast = decodeHotPacket(frame, packet.cmd === 'connect' ? undefined : protocolVersion);
        if (fast === undefined) return;
        expect(fast).toEqual(parseWithMqttPacket(bytes, protocolVersion));
      }),
      PROPERTY_RUNS,
    );
  });

  it('takes the fast path for the packets of the hot path', () => {
    const hot: [Packet, 4 | 5][] = [
      [{ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, messageId: 3, retain: true, dup: false }, 5],
      [{ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, 4],
      [{ cmd: 'puback', messageId: 3, reasonCode: 0 }, 5],
      [{ cmd: 'pubrel', messageId: 3 }, 4],
      [{ cmd: 'pingreq' }, 5],
      [{ cmd: 'disconnect' }, 4],
    ];
    for (const [packet, protocolVersion] of hot) {
      const bytes = generate(packet, { protocolVersion });
      expect(decodeHotPacket(frameOf(bytes), protocolVersion), packet.cmd).toEqual(parseWithMqttPacket(bytes, protocolVersion));
    }
    const connect = generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'device-1', clean: true, keepalive: 60, username: 'u', password: Buffer.from('p') });
    expect(decodeHotPacket(frameOf(connect), undefined)).toEqual(parseWithMqttPacket(connect, 5));
  });

  it('gives every connection the same packets and errors as one mqtt-packet parser per connection did, for valid and mutated frames', () => {
    const edits = fc.array(fc.tuple(fc.nat(40), fc.integer({ min: 0, max: 255 })), { maxLength: 3 });
    const frames = fc.tuple(connect, fc.option(edits, { nil: undefined, freq: 4 }), fc.array(fc.tuple(clientPacket, edits), { maxLength: 8 }));
    fc.assert(
      fc.property(frames, ([connectPacket, connectEdits, rest]) => {
        const protocolVersion = (connectPacket as { protocolVersion: 4 | 5 }).protocolVersion;
        const reference = new ReferenceDecoder();
        const decoder = new PacketDecoder();
        let first: Buffer;
        try {
          first = generate(connectPacket, { protocolVersion });
        } catch {
          return; // a CONNECT generate refuses (no client id and no clean session) is not sent
        }
        const encoded = [mutate(first, connectEdits ?? [])];
        for (const [packet, edits] of rest) {
          try {
            encoded.push(mutate(generate(packet, { protocolVersion }), edits));
          } catch {
            // a packet generate refuses for this version is not sent
          }
        }
        for (const bytes of encoded) {
          const frame = frameOf(bytes);
          const expected = reference.decode(frame);
          const actual = decoder.decode(frame);
          expect(actual).toEqual(expected);
          if ('error' in expected) break; // the connection closes
        }
      }),
      PROPERTY_RUNS,
    );
  });
});
