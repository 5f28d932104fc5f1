import { crc32 } from 'node:zlib';

/** MQTT 5 PUBLISH properties the queue keeps with a message. */
export interface QueuedProperties {
  readonly contentType?: string;
  readonly userProperties?: Readonly<Record<string, string>>;
}

/** A message waiting to be published; `seq` orders the queue and names the message for `acknowledge`. */
export interface QueuedMessage {
  readonly seq: number;
  readonly topic: string;
  readonly payload: Buffer;
  /** ISO 8601 time at which the application handed the message over. */
  readonly enqueuedAt: string;
  readonly properties?: Readonly<QueuedProperties>;
}

/**
 * Removes every message up to and including `through`. `droppedTotal` is the running count of
 * messages dropped unsent (queue full, memory shedding), so the count survives restarts.
 */
export interface TrimRecord {
  readonly kind: 'trim';
  readonly through: number;
  readonly droppedTotal: number;
}

export interface MessageRecord {
  readonly kind: 'message';
  readonly message: QueuedMessage;
}

export type QueueRecord = MessageRecord | TrimRecord;

const NEWLINE = 0x0a;
const SPACE = 0x20;
const CRC_DIGITS = 8;

/**
 * One record is one line: `<crc32 of the JSON, 8 hex digits> <JSON>\n`. The payload travels as
 * base64 and JSON escapes control characters, so no record can contain a line break: a damaged
 * line never takes its neighbours' framing with it, and a payload cannot smuggle in a record.
 * CRC-32 detects torn writes and bit rot; it is not meant to resist anyone who can write the file
 * (the folder is the owner's alone).
 */
export function encodeRecord(record: QueueRecord): Buffer {
  const json = Buffer.from(JSON.stringify(toJson(record)), 'utf8');
  const line = Buffer.allocUnsafe(CRC_DIGITS + 1 + json.length + 1);
  line.write(crc32(json).toString(16).padStart(CRC_DIGITS, '0'), 0, 'latin1');
  line[CRC_DIGITS] = SPACE;
  json.copy(line, CRC_DIGITS + 1);
  line[line.length - 1] = NEWLINE;
  return line;
}

/** Decodes one line (without its newline); null when the checksum or the shape is wrong. */
export function decodeRecord(line: Buffer): QueueRecord | null {
  if (line.length <= CRC_DIGITS + 1 || line[CRC_DIGITS] !== SPACE) return null;
  const digits = line.toString('latin1', 0, CRC_DIGITS);
  if (!/^[0-9a-f]{8}$/.test(digits)) return null;
  const json = line.subarray(CRC_DIGITS + 1);
  if (crc32(json) !== Number.parseInt(digits, 16)) return null;
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch {
    return null;
  }
  return fromJson(value);
}

function toJson(record: QueueRecord): Record<string, unknown> {
  if (record.kind === 'trim') return { k: 'trim', through: record.through, dropped: record.droppedTotal };
  const { seq, enqueuedAt, topic, payload, properties } = record.message;
  return {
    k: 'msg',
    seq,
    at: enqueuedAt,
    topic,
    payload: payload.toString('base64'),
    ...(properties?.contentType === undefined ? {} : { contentType: properties.contentType }),
    ...(properties?.userProperties === undefined ? {} : { userProperties: properties.userProperties }),
  };
}

function fromJson(value: unknown): QueueRecord | null {
  if (!isObject(value)) return null;
  if (value.k === 'trim') {
    const { through, dropped } = value;
    return isCount(through) && isCount(dropped) ? { kind: 'trim', through, droppedTotal: dropped } : null;
  }
  if (value.k !== 'msg') return null;
  const { seq, at, topic, payload, contentType, userProperties } = value;
  if (!isCount(seq) || seq === 0 || typeof at !== 'string' || typeof topic !== 'string' || typeof payload !== 'string') return null;
  if (contentType !== undefined && typeof contentType !== 'string') return null;
  if (userProperties !== undefined && !isStringRecord(userProperties)) return null;
  const properties: QueuedProperties = {
    ...(contentType === undefined ? {} : { contentType }),
    ...(userProperties === undefined ? {} : { userProperties }),
  };
  const message: QueuedMessage = {
    seq,
    topic,
    payload: Buffer.from(payload, 'base64'),
    enqueuedAt: at,
    ...(contentType === undefined && userProperties === undefined ? {} : { properties }),
  };
  return { kind: 'message', message };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

export function isStringRecord(value: unknown): value is Readonly<Record<string, string>> {
  return isObject(value) && Object.values(value).every((item) => typeof item === 'string');
}
