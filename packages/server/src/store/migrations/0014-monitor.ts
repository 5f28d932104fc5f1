import type { Kysely, Migration } from 'kysely';
import type { StoreDialect } from '../store.js';

/**
 * Rule 5: security metrics per device per window (cloud side and device side, kept for the
 * retention period), custom device metrics declared per thing type, security profiles and their
 * attachments to groups, and what detection remembers per device between windows.
 */
export function monitor(dialect: StoreDialect): Migration {
  const int64 = dialect === 'sqlite' ? 'integer' : 'bigint';
  const real = dialect === 'sqlite' ? 'real' : 'double precision';
  return {
    async up(db: Kysely<unknown>) {
      let windows = db.schema
        .createTable('monitor_windows')
        .addColumn('thing', 'text', (c) => c.notNull())
        .addColumn('window_start', 'text', (c) => c.notNull())
        .addColumn('window_end', 'text', (c) => c.notNull());
      for (const column of CLOUD_COLUMNS) windows = windows.addColumn(column, int64, (c) => c.notNull());
      windows = windows.addColumn('message_size_mean', real, (c) => c.notNull()).addColumn('source_addresses', 'text', (c) => c.notNull()).addColumn('reported', 'integer', (c) => c.notNull());
      for (const column of DEVICE_COLUMNS) windows = windows.addColumn(column, int64);
      await windows
        .addColumn('cpu_percent', real)
        .addColumn('battery_percent', real)
        .addColumn('listening', 'text')
        .addColumn('destinations', 'text')
        .addColumn('custom', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('monitor_windows_pk', ['thing', 'window_start'])
        .execute();
      await db.schema.createIndex('monitor_windows_by_start').on('monitor_windows').column('window_start').execute();
      await db.schema
        .createTable('monitor_custom_metrics')
        .addColumn('thing_type', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('monitor_custom_metrics_pk', ['thing_type', 'name'])
        .execute();
      await db.schema
        .createTable('security_profiles')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('security_profile_groups')
        .addColumn('profile', 'text', (c) => c.notNull())
        .addColumn('group_name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('security_profile_groups_pk', ['profile', 'group_name'])
        .execute();
      await db.schema
        .createTable('detection_state')
        .addColumn('thing', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  };
}

/** Cloud-side counters (never null: a device the gateway did not see in a window has no row). */
export const CLOUD_COLUMNS = [
  'connect_attempts', 'authn_failures', 'authz_failures', 'disconnects', 'disconnected_seconds', 'messages_in', 'messages_out', 'bytes_in', 'bytes_out',
  'message_size_max', 'source_address_count', 'certificate_addresses_max',
] as const;

/** Device-side values (null when the device sent no report in the window). */
export const DEVICE_COLUMNS = [
  'listening_total', 'established', 'device_bytes_in', 'device_bytes_out', 'packets_in', 'packets_out', 'processes', 'memory_used_bytes', 'disk_used_bytes',
  'uptime_seconds', 'agent_restarts', 'device_auth_failures',
] as const;
