import { sql } from 'kysely';
import type { Store } from '../store/store.js';

/**
 * The telemetry store read as a feed: committed rows in a total order that never changes behind a
 * reader, so a consumer's cursor can say "everything up to here was acknowledged" (migration
 * 0016 explains what makes that sound on each dialect).
 *
 * - SQLite: rows in id order (AUTOINCREMENT ids, never reused; one writer commits at a time).
 * - PostgreSQL: rows in (txid, id) order, only of transactions older than every transaction
 *   still running (`pg_snapshot_xmin`). A row of a transaction still in flight may carry a lower
 *   id than rows already committed; it is read once its transaction is over, and in (txid, id)
 *   order it still comes after everything read before. A long-running write transaction anywhere
 *   in the database therefore delays delivery, never reorders or loses it.
 */

/** A place in the feed; `txid` is always 0 on SQLite. */
export interface FeedPosition {
  readonly txid: number;
  readonly id: number;
}

export const FEED_START: FeedPosition = { txid: 0, id: 0 };

/** One stored row (one message's storage group) with its place in the feed. */
export interface FeedRow {
  readonly position: FeedPosition;
  readonly messageId: string;
  readonly thing: string;
  readonly topic: string;
  readonly contract: string;
  readonly version: number;
  readonly receivedAt: string;
  /** JSON object: field path → minimized value. */
  readonly fields: string;
}

/** How a position is shown (`show`, the API): opaque to operators, stable across restarts. */
export function positionText(position: FeedPosition): string {
  return `${position.txid}:${position.id}`;
}

/** Up to `limit` rows after `after` (and not after `through`, when given), in feed order. */
export async function readFeed(store: Store, after: FeedPosition, options: { readonly limit: number; readonly through?: FeedPosition }): Promise<FeedRow[]> {
  const columns = ['id', 'message_id', 'thing', 'topic', 'contract', 'version', 'received_at', 'fields'] as const;
  if (store.dialect === 'sqlite') {
    let query = store.db.selectFrom('data_telemetry').select(columns).where('id', '>', after.id);
    if (options.through !== undefined) query = query.where('id', '<=', options.through.id);
    const rows = await query.orderBy('id').limit(options.limit).execute();
    return rows.map((r) => feedRow(r, 0));
  }
  let query = withTxid(store)
    .selectFrom('data_telemetry')
    .select([...columns, 'txid'])
    .where(sql<boolean>`(txid, id) > (${after.txid}, ${after.id})`)
    .where('txid', '<', settledBelow());
  if (options.through !== undefined) query = query.where(sql<boolean>`(txid, id) <= (${options.through.txid}, ${options.through.id})`);
  const rows = await query.orderBy('txid').orderBy('id').limit(options.limit).execute();
  return rows.map((r) => feedRow(r, Number(r.txid)));
}

/** The newest settled position: where a consumer created "from now" starts. */
export async function feedHead(store: Store): Promise<FeedPosition> {
  if (store.dialect === 'sqlite') {
    const row = await store.db.selectFrom('data_telemetry').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
    return { txid: 0, id: Number(row?.id ?? 0) };
  }
  const row = await withTxid(store).selectFrom('data_telemetry').select(['txid', 'id']).where('txid', '<', settledBelow()).orderBy('txid', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  return row === undefined ? FEED_START : { txid: Number(row.txid), id: Number(row.id) };
}

/** The PostgreSQL-only column (not in `Tables`: the telemetry writer never sets it, its default does). */
function withTxid(store: Store) {
  return store.db.withTables<{ data_telemetry: { txid: number } }>();
}

/** Transaction ids below this are finished: committed (visible) or rolled back (never visible). */
function settledBelow() {
  return sql<number>`pg_snapshot_xmin(pg_current_snapshot())::text::bigint`;
}

function feedRow(r: { id: number; message_id: string; thing: string; topic: string; contract: string; version: number; received_at: string; fields: string }, txid: number): FeedRow {
  return { position: { txid, id: Number(r.id) }, messageId: r.message_id, thing: r.thing, topic: r.topic, contract: r.contract, version: Number(r.version), receivedAt: r.received_at, fields: r.fields };
}
