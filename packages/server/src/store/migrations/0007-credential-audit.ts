import type { Kysely, Migration } from 'kysely';

/** Which client ids each certificate connected as (a cloned credential shows several), and the credential audit's findings. */
export function credentialAudit(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('certificate_uses')
        .addColumn('serial', 'text', (c) => c.notNull().references('certificates.serial'))
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('first_seen_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('certificate_uses_pk', ['serial', 'client_id'])
        .execute();
      await db.schema
        .createTable('credential_findings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('thing', 'text')
        .addColumn('serial', 'text')
        .addColumn('ca_id', 'text')
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('found_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('credential_findings_thing').on('credential_findings').column('thing').execute();
      await db.schema
        .createTable('credential_audit_runs')
        .addColumn('ran_at', 'text', (c) => c.primaryKey())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('findings', 'integer', (c) => c.notNull())
        .execute();
    },
  };
}
