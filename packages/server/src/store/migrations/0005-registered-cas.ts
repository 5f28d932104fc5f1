import type { Kysely, Migration } from 'kysely';

/** Third-party CAs registered with proof of possession, and the codes that proof signs. */
export function registeredCas(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('registered_cas')
        .addColumn('ca_id', 'text', (c) => c.primaryKey().references('certificate_authorities.id'))
        .addColumn('template', 'text', (c) => c.references('provisioning_templates.name'))
        .addColumn('registered_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('ca_registration_codes')
        .addColumn('code', 'text', (c) => c.primaryKey())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
    },
  };
}
