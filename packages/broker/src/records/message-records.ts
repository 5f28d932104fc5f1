import type { Delivery, Message, MessageProperties, QoS, Subscription, UserProperties } from '../message.js';
import { ByteReader, RecordFormatError } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';

// Message flags: QoS in the two low bits, then which optional fields follow.
const RETAIN = 0x04;
const EXPIRES = 0x08;
const PUBLISHER = 0x10;
const PROPERTIES = 0x20;

// Property flags, one per MessageProperties field.
const PAYLOAD_FORMAT = 0x01;
const PAYLOAD_UTF8 = 0x02;
const CONTENT_TYPE = 0x04;
const RESPONSE_TOPIC = 0x08;
const CORRELATION_DATA = 0x10;
const USER_PROPERTIES = 0x20;

// Subscription option bits (as in the SUBSCRIBE options byte, MQTT 3.8.3.1) and optional fields.
const NO_LOCAL = 0x04;
const RETAIN_AS_PUBLISHED = 0x08;
const SHARE_GROUP = 0x40;
const SUBSCRIPTION_ID = 0x80;

/**
 * Writes a message exactly: payload and correlation data byte for byte, properties in order. The
 * expiry is written as `expiresAt - clockOffset`, so a sender can write it relative to its clock.
 */
export function writeMessage(writer: ByteWriter, message: Message, clockOffset = 0): void {
  let flags = message.qos;
  if (message.retain) flags |= RETAIN;
  if (message.expiresAt !== undefined) flags |= EXPIRES;
  if (message.publisher !== undefined) flags |= PUBLISHER;
  if (message.properties !== undefined) flags |= PROPERTIES;
  writer.u8(flags).string(message.topic).bytes(message.payload);
  if (message.expiresAt !== undefined) writer.f64(message.expiresAt - clockOffset);
  if (message.publisher !== undefined) writer.string(message.publisher);
  if (message.properties !== undefined) writeProperties(writer, message.properties);
}

/** Reads a message; `clockOffset` is added to its expiry (the reader's clock minus the writer's). */
export function readMessage(reader: ByteReader, clockOffset = 0): Message {
  const flags = reader.u8();
  const topic = reader.string();
  const payload = reader.bytes();
  return {
    topic,
    payload,
    qos: readQoS(flags),
    retain: (flags & RETAIN) !== 0,
    expiresAt: (flags & EXPIRES) === 0 ? undefined : reader.f64() + clockOffset,
    publisher: (flags & PUBLISHER) === 0 ? undefined : reader.string(),
    properties: (flags & PROPERTIES) === 0 ? undefined : readProperties(reader),
  };
}

export function writeDelivery(writer: ByteWriter, delivery: Delivery): void {
  writeMessage(writer, delivery.message);
  writer.u8(delivery.qos | (delivery.retain ? RETAIN : 0));
  writeIds(writer, delivery.subscriptionIds);
}

export function readDelivery(reader: ByteReader): Delivery {
  const message = readMessage(reader);
  const flags = reader.u8();
  return { message, qos: readQoS(flags), retain: (flags & RETAIN) !== 0, subscriptionIds: readIds(reader) };
}

export function writeSubscription(writer: ByteWriter, subscription: Subscription): void {
  let flags = subscription.qos | (subscription.retainHandling << 4);
  if (subscription.noLocal) flags |= NO_LOCAL;
  if (subscription.retainAsPublished) flags |= RETAIN_AS_PUBLISHED;
  if (subscription.shareGroup !== undefined) flags |= SHARE_GROUP;
  if (subscription.subscriptionId !== undefined) flags |= SUBSCRIPTION_ID;
  writer.u8(flags).string(subscription.filter).string(subscription.pattern);
  if (subscription.shareGroup !== undefined) writer.string(subscription.shareGroup);
  if (subscription.subscriptionId !== undefined) writer.u32(subscription.subscriptionId);
}

export function readSubscription(reader: ByteReader): Subscription {
  const flags = reader.u8();
  const retainHandling = (flags >> 4) & 0x03;
  if (retainHandling > 2) throw new RecordFormatError(`retain handling ${retainHandling}`);
  const filter = reader.string();
  const pattern = reader.string();
  return {
    filter,
    pattern,
    shareGroup: (flags & SHARE_GROUP) === 0 ? undefined : reader.string(),
    qos: readQoS(flags),
    noLocal: (flags & NO_LOCAL) !== 0,
    retainAsPublished: (flags & RETAIN_AS_PUBLISHED) !== 0,
    retainHandling: retainHandling as 0 | 1 | 2,
    subscriptionId: (flags & SUBSCRIPTION_ID) === 0 ? undefined : reader.u32(),
  };
}

export function encodeMessage(message: Message): Buffer {
  const writer = new ByteWriter(message.payload.length + message.topic.length + 64);
  writeMessage(writer, message);
  return writer.finish();
}

export function decodeMessage(record: Buffer): Message {
  const reader = new ByteReader(record);
  const message = readMessage(reader);
  reader.end();
  return message;
}

export function encodeDelivery(delivery: Delivery): Buffer {
  const writer = new ByteWriter(delivery.message.payload.length + delivery.message.topic.length + 64);
  writeDelivery(writer, delivery);
  return writer.finish();
}

export function decodeDelivery(record: Buffer): Delivery {
  const reader = new ByteReader(record);
  const delivery = readDelivery(reader);
  reader.end();
  return delivery;
}

function writeProperties(writer: ByteWriter, properties: MessageProperties): void {
  const { payloadFormatIndicator, contentType, responseTopic, correlationData, userProperties } = properties;
  let flags = 0;
  if (payloadFormatIndicator !== undefined) flags |= PAYLOAD_FORMAT | (payloadFormatIndicator ? PAYLOAD_UTF8 : 0);
  if (contentType !== undefined) flags |= CONTENT_TYPE;
  if (responseTopic !== undefined) flags |= RESPONSE_TOPIC;
  if (correlationData !== undefined) flags |= CORRELATION_DATA;
  if (userProperties !== undefined) flags |= USER_PROPERTIES;
  writer.u8(flags);
  if (contentType !== undefined) writer.string(contentType);
  if (responseTopic !== undefined) writer.string(responseTopic);
  if (correlationData !== undefined) writer.bytes(correlationData);
  // JSON keeps names, values and the order of repeated values; names are ordered as JavaScript orders them anyway.
  if (userProperties !== undefined) writer.string(JSON.stringify(userProperties));
}

function readProperties(reader: ByteReader): MessageProperties {
  const flags = reader.u8();
  const properties: { -readonly [K in keyof MessageProperties]: MessageProperties[K] } = {};
  if ((flags & PAYLOAD_FORMAT) !== 0) properties.payloadFormatIndicator = (flags & PAYLOAD_UTF8) !== 0;
  if ((flags & CONTENT_TYPE) !== 0) properties.contentType = reader.string();
  if ((flags & RESPONSE_TOPIC) !== 0) properties.responseTopic = reader.string();
  if ((flags & CORRELATION_DATA) !== 0) properties.correlationData = reader.bytes();
  if ((flags & USER_PROPERTIES) !== 0) properties.userProperties = parseUserProperties(reader.string());
  return properties;
}

function parseUserProperties(json: string): UserProperties {
  const parsed: unknown = JSON.parse(json);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new RecordFormatError('user properties are not an object');
  for (const value of Object.values(parsed as Record<string, unknown>)) {
    const ok = typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'));
    if (!ok) throw new RecordFormatError('a user property value is not a string');
  }
  return parsed as UserProperties;
}

function writeIds(writer: ByteWriter, ids: readonly number[] | undefined): void {
  if (ids === undefined) {
    writer.u8(0);
    return;
  }
  writer.u8(1).u32(ids.length);
  for (const id of ids) writer.u32(id);
}

function readIds(reader: ByteReader): number[] | undefined {
  if (reader.u8() === 0) return undefined;
  const ids: number[] = [];
  for (let count = reader.u32(); count > 0; count--) ids.push(reader.u32());
  return ids;
}

function readQoS(flags: number): QoS {
  const qos = flags & 0x03;
  if (qos === 3) throw new RecordFormatError('QoS 3');
  return qos as QoS;
}
