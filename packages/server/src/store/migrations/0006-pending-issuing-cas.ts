import type { Kysely, Migration } from 'kysely';

/** Issuing CA keys waiting for their certificate from an offline root. */
export function pendingIssuingCas(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('pending_issuing_cas')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('key_reference', 'text', (c) => c.notNull())
        .addColumn('key_fingerprint', 'text', (c) => c.notNull().unique())
        .addColumn('key_algorithm', 'text', (c) => c.notNull())
        .addColumn('csr_pem', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
