import type { Kysely, Migration } from 'kysely';
import type { StoreDialect } from '../store.js';

/** Rule 9: data contracts, sealed data keys, the token vault, minimized telemetry with retention, read tracking. */
export function dataContracts(dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('data_contracts')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('definition', 'text', (c) => c.notNull())
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('thing_type', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('data_contracts_pk', ['name', 'version'])
        .execute();
      await db.schema
        .createTable('data_keys')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('data_token_vault')
        .addColumn('token', 'text', (c) => c.primaryKey())
        .addColumn('thing', 'text', (c) => c.notNull())
        .addColumn('contract', 'text', (c) => c.notNull())
        .addColumn('field', 'text', (c) => c.notNull())
        .addColumn('sealed_value', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('data_token_vault_thing').on('data_token_vault').column('thing').execute();
      await db.schema.createIndex('data_token_vault_expires').on('data_token_vault').column('expires_at').execute();
      await db.schema
        .createTable('data_telemetry')
        // SQLite: an alias of the rowid; PostgreSQL: an identity column.
        .addColumn('id', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => c.primaryKey())
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
      await db.schema.createIndex('data_telemetry_thing').on('data_telemetry').columns(['thing', 'received_at']).execute();
      await db.schema.createIndex('data_telemetry_expires').on('data_telemetry').column('expires_at').execute();
      await db.schema
        .createTable('data_field_reads')
        .addColumn('contract', 'text', (c) => c.notNull())
        .addColumn('field', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('last_read_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('data_field_reads_pk', ['contract', 'field', 'purpose'])
        .execute();
      await db.schema
        .createTable('data_unclassified')
        .addColumn('thing_type', 'text', (c) => c.notNull())
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('first_seen_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('data_unclassified_pk', ['thing_type', 'topic', 'outcome'])
        .execute();
    },
  };
}
