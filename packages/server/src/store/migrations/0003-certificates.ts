import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../store.js';

/**
 * Device and claim certificates, the binding of each public key to one thing (a key may never
 * serve two things), and the CRL counter per CA. CA rows also describe registered third-party CAs.
 */
export function certificates(dialect: StoreDialect): Migration {
  const int64 = dialect === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('certificates')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('ca_id', 'text', (c) => c.notNull().references('certificate_authorities.id'))
        .addColumn('thing_id', 'text', (c) => c.references('things.id'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('template', 'text')
        .addColumn('subject_cn', 'text', (c) => c.notNull())
        .addColumn('key_fingerprint', 'text', (c) => c.notNull())
        .addColumn('key_algorithm', 'text', (c) => c.notNull())
        .addColumn('key_storage', 'text', (c) => c.notNull())
        .addColumn('attestation', 'text')
        .addColumn('issued_via', 'text', (c) => c.notNull())
        .addColumn('issued_by', 'text', (c) => c.notNull())
        .addColumn('not_before', 'text', (c) => c.notNull())
        .addColumn('not_after', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revocation_reason', 'text')
        .addColumn('must_rotate', 'integer', (c) => c.notNull())
        .addColumn('replaces', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('pem', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('certificates_thing').on('certificates').columns(['thing_id', 'status']).execute();
      await db.schema.createIndex('certificates_ca_status').on('certificates').columns(['ca_id', 'status']).execute();
      await db.schema.createIndex('certificates_expiry').on('certificates').columns(['status', 'not_after']).execute();
      await db.schema.createIndex('certificates_key').on('certificates').column('key_fingerprint').execute();
      await db.schema
        .createTable('certificate_keys')
        .addColumn('key_fingerprint', 'text', (c) => c.primaryKey())
        .addColumn('thing_id', 'text', (c) => c.notNull().references('things.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('crl_numbers')
        .addColumn('ca_id', 'text', (c) => c.primaryKey().references('certificate_authorities.id'))
        .addColumn('number', int64, (c) => c.notNull())
        .execute();
      // Revocation is final: the database refuses to bring a revoked certificate back.
      if (dialect === 'sqlite') {
        await sql.raw(`create trigger certificates_revocation_final before update of status on certificates when old.status = 'revoked' and new.status <> 'revoked' begin select raise(abort, 'revocation is final'); end`).execute(db);
      } else {
        await sql.raw(`create function certificates_revocation_final() returns trigger language plpgsql as $$ begin if old.status = 'revoked' and new.status <> 'revoked' then raise exception 'revocation is final'; end if; return new; end $$`).execute(db);
        await sql.raw(`create trigger certificates_revocation_final before update on certificates for each row execute function certificates_revocation_final()`).execute(db);
      }
    },
  };
}
