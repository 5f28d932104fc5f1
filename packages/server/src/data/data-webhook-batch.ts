import { topicFilterMatches } from '@fleetward/protocol';
import type { Role } from '../access/roles.js';
import type { JsonValue } from '../json.js';
import type { DataGrants } from './classification.js';
import type { FieldSpec } from './contract.js';
import type { FeedPosition, FeedRow } from './data-webhook-feed.js';
import { discloses, type DisclosedField } from './disclosure.js';

/** What a consumer receives: its selector, and the purpose and role its fields are filtered by. */
export interface ConsumerView {
  readonly contract: string | null;
  readonly topic: string | null;
  readonly purpose: string;
  readonly role: Role;
}

/** One minimized message as a consumer receives it (the query API's row, with its thing). */
export interface WebhookRecord {
  readonly messageId: string;
  readonly thing: string;
  readonly topic: string;
  readonly contract: string;
  readonly version: number;
  readonly receivedAt: string;
  readonly fields: { readonly [path: string]: JsonValue };
}

export interface BatchLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
}

export interface Batch {
  readonly records: readonly WebhookRecord[];
  /** The feed position the batch covers up to (skipped rows included); null when nothing was read. */
  readonly end: FeedPosition | null;
  /** Fields disclosed by the records, by `contract\0path`. */
  readonly disclosed: ReadonlyMap<string, DisclosedField>;
}

export type SpecsOf = (contract: string, version: number) => ReadonlyMap<string, FieldSpec>;

/**
 * Builds the next batch from feed rows, purely: rows grouped into messages (a message's storage
 * groups are adjacent, written in one transaction), messages outside the selector skipped, each
 * message's fields filtered as the query API filters them, and messages with nothing left for
 * the purpose skipped (a consumer learns nothing, not even that a message exists). Stops before
 * a message that would break a limit; at least one record always fits. `mayBeCut`: the rows
 * ended at the read limit, so the last message may be missing groups and is left for the next read.
 */
export function assembleBatch(rows: readonly FeedRow[], mayBeCut: boolean, view: ConsumerView, specsOf: SpecsOf, grants: DataGrants, limits: BatchLimits): Batch {
  const messages = groupMessages(rows);
  if (mayBeCut && messages.length > 1) messages.pop();
  const records: WebhookRecord[] = [];
  const disclosed = new Map<string, DisclosedField>();
  let end: FeedPosition | null = null;
  let bytes = 0;
  for (const message of messages) {
    const first = message[0] as FeedRow;
    const last = message.at(-1) as FeedRow;
    const record = selects(view, first) ? recordOf(message, view, specsOf(first.contract, first.version), grants) : null;
    if (record !== null) {
      const size = Buffer.byteLength(JSON.stringify(record.record)) + 1;
      if (records.length > 0 && (records.length >= limits.maxMessages || bytes + size > limits.maxBytes)) break;
      records.push(record.record);
      bytes += size;
      for (const spec of record.disclosed) disclosed.set(`${spec.contract}\0${spec.path}`, spec);
    }
    end = last.position;
  }
  return { records, end, disclosed };
}

function groupMessages(rows: readonly FeedRow[]): FeedRow[][] {
  const messages: FeedRow[][] = [];
  for (const row of rows) {
    const current = messages.at(-1);
    if (current !== undefined && (current[0] as FeedRow).messageId === row.messageId) current.push(row);
    else messages.push([row]);
  }
  return messages;
}

function selects(view: ConsumerView, row: FeedRow): boolean {
  return (view.contract === null || view.contract === row.contract) && (view.topic === null || topicFilterMatches(view.topic, row.topic));
}

function recordOf(message: readonly FeedRow[], view: ConsumerView, specs: ReadonlyMap<string, FieldSpec>, grants: DataGrants): { record: WebhookRecord; disclosed: DisclosedField[] } | null {
  const first = message[0] as FeedRow;
  const fields: Record<string, JsonValue> = {};
  const disclosed: DisclosedField[] = [];
  for (const row of message) {
    for (const [path, value] of Object.entries(JSON.parse(row.fields) as Record<string, JsonValue>)) {
      const spec = specs.get(path);
      if (!discloses(spec, view.purpose, view.role, grants)) continue;
      fields[path] = value;
      disclosed.push({ ...spec, contract: row.contract });
    }
  }
  if (disclosed.length === 0) return null;
  return { record: { messageId: first.messageId, thing: first.thing, topic: first.topic, contract: first.contract, version: first.version, receivedAt: first.receivedAt, fields }, disclosed };
}
