import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../store.js';

/**
 * Signed checkpoints of the audit trail (docs/audit-trail.md): the Ed25519 keys that sign them
 * (private keys sealed with the key ring), the checkpoints themselves (append-only, like the
 * events), and the cursors of the exports to external collectors.
 */
export function auditCheckpoints(dialect: StoreDialect): Migration {
  const int64 = dialect === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_signing_keys')
        .addColumn('key_id', 'text', (c) => c.primaryKey())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('sealed_private_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('number', int64, (c) => c.primaryKey())
        .addColumn('seq', int64, (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .execute();
      if (dialect === 'sqlite') {
        for (const operation of ['update', 'delete']) {
          await sql.raw(`create trigger audit_checkpoints_no_${operation} before ${operation} on audit_checkpoints begin select raise(abort, 'audit_checkpoints is append-only'); end`).execute(db);
        }
      } else {
        await sql.raw(`create function audit_checkpoints_append_only() returns trigger language plpgsql as $$ begin raise exception 'audit_checkpoints is append-only'; end $$`).execute(db);
        await sql.raw(`create trigger audit_checkpoints_no_change before update or delete on audit_checkpoints for each row execute function audit_checkpoints_append_only()`).execute(db);
        await sql.raw(`create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints for each statement execute function audit_checkpoints_append_only()`).execute(db);
      }
      await db.schema
        .createTable('audit_export_cursors')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('seq', int64, (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
