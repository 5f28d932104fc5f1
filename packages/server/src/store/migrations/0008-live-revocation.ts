import type { Kysely, Migration } from 'kysely';

/** What gateways poll to close live connections of revoked certificates and of things whose state changed, on every node. */
export function liveRevocation(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex('certificates_revoked').on('certificates').columns(['status', 'revoked_at']).execute();
      await db.schema.createIndex('things_state_changed').on('things').column('state_changed_at').execute();
    },
  };
}
