import type { Kysely, Migration } from 'kysely';

/** Operator bans of devices (by thing, client id or source address), which every gateway node enforces. */
export function deviceBans(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('device_bans')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('note', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('device_bans_pk', ['kind', 'value'])
        .execute();
    },
  };
}
