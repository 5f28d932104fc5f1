import type { Message } from '../message.js';
import { ByteReader, RecordFormatError } from '../records/byte-reader.js';
import { ByteWriter } from '../records/byte-writer.js';
import { readMessage, writeMessage } from '../records/message-records.js';
import type { Claim, Release, RemotePublish, SharedChoice, ShareUpdate } from './cluster-transport.js';

/** First byte of a batch of messages; control events are JSON objects, so they start with `{`. */
const BATCH = 0x01;

export type ControlEvent =
  | ({ readonly kind: 'claim' } & Claim)
  | ({ readonly kind: 'release' } & Release)
  | ({ readonly kind: 'share' } & ShareUpdate)
  | { readonly kind: 'leave'; readonly node: string };

export type BusFrame = { readonly kind: 'batch'; readonly node: string; readonly reader: ByteReader } | ControlEvent;

/**
 * The messages one node publishes in one turn of its event loop, as one binary frame: one Redis
 * PUBLISH however many messages. Expiry travels as time remaining, so node clocks need not agree.
 */
export class BatchWriter {
  readonly #writer = new ByteWriter(4096);
  readonly #startedAt: number;
  readonly #countAt: number;
  #count = 0;

  constructor(node: string, now: number) {
    this.#startedAt = now;
    this.#writer.u8(BATCH).string(node);
    this.#countAt = this.#writer.length;
    this.#writer.u32(0);
  }

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#writer.length;
  }

  add(seq: number, message: Message, shared: readonly SharedChoice[]): void {
    this.#writer.f64(seq);
    writeMessage(this.#writer, message, this.#startedAt);
    this.#writer.u16(shared.length);
    for (const choice of shared) this.#writer.string(choice.node).string(choice.pattern).string(choice.group);
    this.#count++;
  }

  finish(): Buffer {
    const frame = this.#writer.finish();
    frame.writeUInt32BE(this.#count, this.#countAt);
    return frame;
  }
}

/** Reads a frame's kind and sender; a batch's messages are read only by `readBatch`, and not at all for our own. */
export function readFrame(frame: Buffer): BusFrame {
  if (frame[0] !== BATCH) return parseControl(frame.toString('utf8'));
  const reader = new ByteReader(frame);
  reader.u8();
  return { kind: 'batch', node: reader.string(), reader };
}

export function readBatch(node: string, reader: ByteReader, now: number): RemotePublish[] {
  const events: RemotePublish[] = [];
  for (let count = reader.u32(); count > 0; count--) {
    const seq = reader.f64();
    // The sender wrote the time remaining when it started the batch; it runs on from our clock.
    const message = readMessage(reader, now);
    const shared: SharedChoice[] = [];
    for (let choices = reader.u16(); choices > 0; choices--) shared.push({ node: reader.string(), pattern: reader.string(), group: reader.string() });
    events.push({ node, seq, message, shared });
  }
  reader.end();
  return events;
}

export function encodeControl(event: ControlEvent): string {
  return JSON.stringify(event);
}

/** Control events come from our own Lua scripts and code; still, each is checked before use. */
function parseControl(json: string): ControlEvent {
  const value: unknown = JSON.parse(json);
  if (typeof value !== 'object' || value === null) throw new RecordFormatError('control event is not an object');
  const event = value as Record<string, unknown>;
  switch (event.kind) {
    case 'claim':
      return {
        kind: 'claim',
        clientId: text(event.clientId),
        claimer: text(event.claimer),
        owner: text(event.owner),
        cleanStart: event.cleanStart === true,
        token: text(event.token),
      };
    case 'release':
      return {
        kind: 'release',
        clientId: text(event.clientId),
        owner: text(event.owner),
        claimer: text(event.claimer),
        token: text(event.token),
        lastSeq: count(event.lastSeq),
      };
    case 'share':
      return { kind: 'share', node: text(event.node), pattern: text(event.pattern), group: text(event.group), online: typeof event.online === 'boolean' ? event.online : undefined };
    case 'leave':
      return { kind: 'leave', node: text(event.node) };
    default:
      throw new RecordFormatError(`unknown control event ${String(event.kind)}`);
  }
}

function text(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new RecordFormatError('control event field is not a string');
  return value;
}

function count(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new RecordFormatError('control event field is not a count');
  return value;
}
