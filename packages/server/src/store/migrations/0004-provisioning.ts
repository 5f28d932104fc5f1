import type { Kysely, Migration } from 'kysely';

/** Provisioning templates and the one-time enrollment tokens that let devices claim an identity. */
export function provisioning(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('provisioning_templates')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('definition', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('enrollment_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('template', 'text', (c) => c.notNull().references('provisioning_templates.name'))
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('uses_left', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
    },
  };
}
