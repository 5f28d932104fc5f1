import type { Kysely, Migration } from 'kysely';

/**
 * Rule 5 response: alerts (deduped detections with a lifecycle and a verdict), their incident
 * timelines, suppressions with an expiry, response actions (with approval and quarantine expiry),
 * notification webhooks (secrets sealed at rest) and their deliveries.
 */
export function alerts(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('alerts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('dedupe_key', 'text', (c) => c.notNull())
        // The dedupe key while the alert is open or acknowledged; null once resolved (NULLs never collide).
        .addColumn('open_key', 'text', (c) => c.unique())
        .addColumn('thing', 'text')
        .addColumn('behavior', 'text', (c) => c.notNull())
        .addColumn('profile', 'text')
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('metric', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('verdict', 'text')
        .addColumn('first_seen', 'text', (c) => c.notNull())
        .addColumn('last_seen', 'text', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('alerts_state').on('alerts').columns(['state', 'last_seen']).execute();
      await db.schema.createIndex('alerts_thing').on('alerts').columns(['thing', 'state']).execute();

      await db.schema
        .createTable('alert_timeline')
        .addColumn('alert_id', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('alert_timeline_pk', ['alert_id', 'position'])
        .execute();

      await db.schema
        .createTable('alert_suppressions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('behavior', 'text')
        .addColumn('thing', 'text')
        .addColumn('group_name', 'text')
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('note', 'text')
        .addColumn('suppressed', 'integer', (c) => c.notNull())
        .addColumn('last_suppressed_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('lifted_at', 'text')
        .execute();

      await db.schema
        .createTable('response_actions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('alert_id', 'text')
        .addColumn('thing', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('error_code', 'text')
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('decided_by', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('released_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema.createIndex('response_actions_thing').on('response_actions').columns(['thing', 'action', 'state']).execute();
      await db.schema.createIndex('response_actions_alert').on('response_actions').columns(['alert_id', 'action']).execute();

      await db.schema
        .createTable('notify_webhooks')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('secret_sealed', 'text', (c) => c.notNull())
        .addColumn('ca_pem', 'text')
        .addColumn('min_severity', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('notify_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('webhook', 'text', (c) => c.notNull())
        .addColumn('alert_id', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text')
        .addColumn('last_status', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('delivered_at', 'text')
        .execute();
      await db.schema.createIndex('notify_deliveries_due').on('notify_deliveries').columns(['state', 'next_attempt_at']).execute();
    },
  };
}
