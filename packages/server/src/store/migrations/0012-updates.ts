import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../store.js';

/**
 * Rule 4: firmware artifacts, the TUF repository (online keys sealed, every metadata version kept),
 * deployments and their per-device jobs, the software each device reports, and each group's
 * opt-in to automatic security updates (on by default, for existing groups too).
 */
export function updates(dialect: StoreDialect): Migration {
  const int64 = dialect === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('firmware_artifacts')
        .addColumn('target', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('security_version', 'integer', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('size', int64, (c) => c.notNull())
        .addColumn('hardware', 'text', (c) => c.notNull())
        .addColumn('release_notes', 'text')
        .addColumn('sbom', 'text')
        .addColumn('security_release', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addUniqueConstraint('firmware_artifacts_name_version', ['name', 'version'])
        .execute();
      await db.schema
        .createTable('tuf_online_keys')
        .addColumn('role', 'text', (c) => c.primaryKey())
        .addColumn('keyid', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('sealed_private_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tuf_metadata')
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('tuf_metadata_pk', ['role', 'version'])
        .execute();
      await db.schema
        .createTable('deployments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('automatic', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('phase_started_at', 'text')
        .execute();
      await db.schema
        .createTable('deployment_jobs')
        .addColumn('deployment_id', 'text', (c) => c.notNull())
        .addColumn('thing', 'text', (c) => c.notNull())
        .addColumn('phase', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('step', 'text')
        .addColumn('reason', 'text')
        .addColumn('message', 'text')
        .addColumn('bytes', int64)
        .addColumn('total_bytes', int64)
        .addColumn('released_at', 'text')
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('deployment_jobs_pk', ['deployment_id', 'thing'])
        .execute();
      await db.schema.createIndex('deployment_jobs_by_thing').on('deployment_jobs').columns(['thing', 'state']).execute();
      await db.schema
        .createTable('device_software')
        .addColumn('thing', 'text', (c) => c.primaryKey())
        .addColumn('firmware_version', 'text', (c) => c.notNull())
        .addColumn('security_version', 'integer')
        .addColumn('image_hash', 'text')
        .addColumn('agent_version', 'text', (c) => c.notNull())
        .addColumn('authorized', 'integer', (c) => c.notNull())
        .addColumn('reported_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.alterTable('thing_groups').addColumn('auto_security_updates', 'integer', (c) => c.notNull().defaultTo(sql`1`)).execute();
    },
  };
}
