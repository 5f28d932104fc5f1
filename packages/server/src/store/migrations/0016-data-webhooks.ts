import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../store.js';

/**
 * Rule 9: consumers of the minimized telemetry stream over signed webhooks, each with a cursor in
 * the telemetry store. For that cursor to be sound the store must hand out positions that only
 * grow and never become visible out of order (data-webhook-feed.ts):
 * - SQLite reuses the largest rowid once the newest rows are deleted (retention, erasure), so a
 *   new row could land behind a cursor. `data_telemetry` is rebuilt with AUTOINCREMENT, which never
 *   reuses an id (https://sqlite.org/autoinc.html). SQLite commits one writer at a time, so ids
 *   become visible in order.
 * - PostgreSQL allocates ids before commit, so concurrent writers (several nodes) commit them out
 *   of order. Each row records its writing transaction (`txid`), and a consumer reads only rows of
 *   transactions older than every one still running, in (txid, id) order.
 */
export function dataWebhooks(dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('data_webhooks')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('ca_pem', 'text')
        .addColumn('secret_sealed', 'text', (c) => c.notNull())
        .addColumn('contract', 'text')
        .addColumn('topic', 'text')
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('cursor_txid', 'bigint', (c) => c.notNull())
        .addColumn('cursor_id', 'bigint', (c) => c.notNull())
        .addColumn('sequence', 'bigint', (c) => c.notNull())
        .addColumn('batch_id', 'text')
        .addColumn('batch_end_txid', 'bigint')
        .addColumn('batch_end_id', 'bigint')
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text')
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('last_status', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('last_attempt_at', 'text')
        .addColumn('last_delivery_id', 'text')
        .addColumn('last_delivery_at', 'text')
        .addColumn('last_delivery_records', 'integer')
        .addColumn('delivered_batches', 'bigint', (c) => c.notNull())
        .addColumn('delivered_records', 'bigint', (c) => c.notNull())
        .addColumn('failed_attempts', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('secret_rotated_at', 'text')
        .execute();
      if (dialect === 'sqlite') await neverReuseTelemetryIds(db);
      else await recordTelemetryTransactions(db);
    },
  };
}

const TELEMETRY_COLUMNS = ['id', 'message_id', 'thing', 'thing_type', 'topic', 'contract', 'version', 'classification', 'fields', 'classes', 'received_at', 'expires_at'];

/** SQLite: the same table and indexes, with AUTOINCREMENT ids; all or nothing (Kysely runs SQLite migrations outside a transaction). */
async function neverReuseTelemetryIds(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.schema
      .createTable('data_telemetry_next')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('message_id', 'text', (c) => c.notNull())
      .addColumn('thing', 'text', (c) => c.notNull())
      .addColumn('thing_type', 'text')
      .addColumn('topic', 'text', (c) => c.notNull())
      .addColumn('contract', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('classification', 'text', (c) => c.notNull())
      .addColumn('fields', 'text', (c) => c.notNull())
      .addColumn('classes', 'text', (c) => c.notNull())
      .addColumn('received_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
    const columns = sql.join(TELEMETRY_COLUMNS.map((c) => sql.ref(c)));
    await sql`insert into data_telemetry_next (${columns}) select ${columns} from data_telemetry order by id`.execute(trx);
    await trx.schema.dropTable('data_telemetry').execute();
    await trx.schema.alterTable('data_telemetry_next').renameTo('data_telemetry').execute();
    await trx.schema.createIndex('data_telemetry_thing').on('data_telemetry').columns(['thing', 'received_at']).execute();
    await trx.schema.createIndex('data_telemetry_expires').on('data_telemetry').column('expires_at').execute();
  });
}

/** PostgreSQL: each row's writing transaction id (rows already stored: 0, long committed), indexed in feed order. */
async function recordTelemetryTransactions(db: Kysely<unknown>): Promise<void> {
  // A constant default first, so existing rows are not rewritten; new rows then get their transaction's id.
  await db.schema.alterTable('data_telemetry').addColumn('txid', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('data_telemetry').alterColumn('txid', (c) => c.setDefault(sql`(pg_current_xact_id()::text::bigint)`)).execute();
  await db.schema.createIndex('data_telemetry_feed').on('data_telemetry').columns(['txid', 'id']).execute();
}
