import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../store.js';

/**
 * The default device policy as first stored (docs/policies.md "The default device policy"), in the
 * canonical form serializePolicy writes. Frozen here like every migration: a later change to the
 * default is a new version written by a later migration, never an edit of this text.
 */
const DEFAULT_POLICY_NAME = 'fleetward-default-device';
const DEFAULT_POLICY_DOCUMENT =
  '{"version":"2026-11","description":"Default device policy: connect as its own thing name; publish, subscribe and receive only in its own namespaces.","statements":[{"sid":"connect-as-self","effect":"allow","actions":["mqtt:connect"],"resources":["client/${thing.name}"]},{"sid":"own-namespaces","effect":"allow","actions":["mqtt:publish","mqtt:subscribe","mqtt:receive"],"resources":["topic/things/${thing.name}/#","topic/$fw/things/${thing.name}/#"]}]}';

/** How many policy-relevant changes the change log keeps; a poller further behind re-evaluates everything. */
const CHANGE_RETENTION = 10_000;

/**
 * A change-log row is written by the database itself (triggers), in the transaction of the change,
 * whoever makes it — this node, another node, the CLI on the data folder — so no writer can forget.
 * Writers take the head row's lock to number changes, so sequence numbers are contiguous and commit
 * in order: a poller reading `seq > cursor` never skips a change committed later with a lower number.
 */
interface ChangeColumns {
  readonly kind: string;
  readonly policy: string;
  readonly thing: string;
  readonly grp: string;
  readonly certificate: string;
}

const TRIGGERS: readonly { readonly table: string; readonly events: readonly ('insert' | 'update' | 'delete')[]; readonly when?: string; readonly columns: (row: 'new' | 'old') => ChangeColumns }[] = [
  {
    // A new version that is not made the default changes nothing in force.
    table: 'policies',
    events: ['update'],
    when: 'old.default_version <> new.default_version',
    columns: (r) => ({ kind: `'policy'`, policy: `${r}.name`, thing: 'null', grp: 'null', certificate: 'null' }),
  },
  {
    table: 'policies',
    events: ['delete'],
    columns: (r) => ({ kind: `'policy'`, policy: `${r}.name`, thing: 'null', grp: 'null', certificate: 'null' }),
  },
  {
    table: 'policy_attachments',
    events: ['insert', 'delete'],
    columns: (r) => ({
      kind: `'attachment'`,
      policy: `${r}.policy`,
      thing: `case when ${r}.target_kind = 'thing' then ${r}.target_name end`,
      grp: `case when ${r}.target_kind = 'group' then ${r}.target_name end`,
      certificate: `case when ${r}.target_kind = 'certificate' then ${r}.target_name end`,
    }),
  },
  {
    table: 'group_members',
    events: ['insert', 'delete'],
    columns: (r) => ({
      kind: `'membership'`,
      policy: 'null',
      thing: `(select name from things where id = ${r}.thing_id)`,
      grp: `(select name from thing_groups where id = ${r}.group_id)`,
      certificate: 'null',
    }),
  },
  {
    // Attributes are conditions and variables; one row per attribute changed (Things.update rewrites them all).
    table: 'thing_attributes',
    events: ['insert', 'update', 'delete'],
    columns: (r) => ({ kind: `'thing'`, policy: 'null', thing: `(select name from things where id = ${r}.thing_id)`, grp: 'null', certificate: 'null' }),
  },
  {
    table: 'things',
    events: ['update'],
    when: "coalesce(old.type, '') <> coalesce(new.type, '')",
    columns: (r) => ({ kind: `'thing'`, policy: 'null', thing: `${r}.name`, grp: 'null', certificate: 'null' }),
  },
  {
    table: 'thing_groups',
    events: ['update'],
    when: 'coalesce(old.parent_id, \'\') <> coalesce(new.parent_id, \'\')',
    columns: (r) => ({ kind: `'group'`, policy: 'null', thing: 'null', grp: `${r}.name`, certificate: 'null' }),
  },
];

async function changeTriggers(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  if (dialect === 'postgres') {
    await sql
      .raw(
        `create function policy_change_record(p_kind text, p_policy text, p_thing text, p_grp text, p_certificate text) returns void language plpgsql as $$
         declare next_seq bigint;
         begin
           update policy_change_head set seq = seq + 1 where id = 1 returning seq into next_seq;
           insert into policy_changes (seq, kind, policy, thing, grp, certificate) values (next_seq, p_kind, p_policy, p_thing, p_grp, p_certificate);
           delete from policy_changes where seq <= next_seq - ${CHANGE_RETENTION};
         end $$`,
      )
      .execute(db);
  }
  for (const trigger of TRIGGERS) {
    for (const event of trigger.events) {
      const row = event === 'delete' ? 'old' : 'new';
      const c = trigger.columns(row);
      const name = `${trigger.table}_policy_${event}`;
      if (dialect === 'sqlite') {
        await sql
          .raw(
            `create trigger ${name} after ${event} on ${trigger.table}${trigger.when === undefined ? '' : ` when ${trigger.when}`} begin
               update policy_change_head set seq = seq + 1 where id = 1;
               insert into policy_changes (seq, kind, policy, thing, grp, certificate) select seq, ${c.kind}, ${c.policy}, ${c.thing}, ${c.grp}, ${c.certificate} from policy_change_head where id = 1;
               delete from policy_changes where seq <= (select seq from policy_change_head where id = 1) - ${CHANGE_RETENTION};
             end`,
          )
          .execute(db);
      } else {
        await sql
          .raw(
            `create function ${name}() returns trigger language plpgsql as $$
             begin
               perform policy_change_record(${c.kind}, ${c.policy}, ${c.thing}, ${c.grp}, ${c.certificate});
               return null;
             end $$`,
          )
          .execute(db);
        await sql.raw(`create trigger ${name} after ${event} on ${trigger.table} for each row${trigger.when === undefined ? '' : ` when (${trigger.when})`} execute function ${name}()`).execute(db);
      }
    }
  }
}

/**
 * Device policies (docs/policies.md "Managing policies"): named, versioned documents (every update
 * is a new version, history kept, one default version in force), their attachments to things,
 * groups and certificates, and the change log gateways poll to re-evaluate live connections.
 */
export function policies(dialect: StoreDialect): Migration {
  const int64 = dialect === 'sqlite' ? 'integer' : 'bigint';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('policies')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('default_version', 'integer', (c) => c.notNull())
        .addColumn('latest_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('policy_versions')
        .addColumn('policy', 'text', (c) => c.notNull().references('policies.name').onDelete('cascade'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('policy_versions_pk', ['policy', 'version'])
        .execute();
      // One target column per kind, each a foreign key: deleting a group removes what was attached to
      // it, so a new group of the same name never inherits an old group's policies.
      await db.schema
        .createTable('policy_attachments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('policy', 'text', (c) => c.notNull().references('policies.name'))
        .addColumn('target_kind', 'text', (c) => c.notNull())
        .addColumn('target_name', 'text', (c) => c.notNull())
        .addColumn('thing_id', 'text', (c) => c.references('things.id').onDelete('cascade'))
        .addColumn('group_id', 'text', (c) => c.references('thing_groups.id').onDelete('cascade'))
        .addColumn('certificate_serial', 'text', (c) => c.references('certificates.serial').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addCheckConstraint(
          'policy_attachments_one_target',
          sql`(target_kind = 'thing' and thing_id is not null and group_id is null and certificate_serial is null)
            or (target_kind = 'group' and group_id is not null and thing_id is null and certificate_serial is null)
            or (target_kind = 'certificate' and certificate_serial is not null and thing_id is null and group_id is null)`,
        )
        .execute();
      await db.schema.createIndex('policy_attachments_unique').on('policy_attachments').columns(['policy', 'target_kind', 'target_name']).unique().execute();
      await db.schema.createIndex('policy_attachments_target').on('policy_attachments').columns(['target_kind', 'target_name']).execute();
      await db.schema.createIndex('policy_attachments_thing').on('policy_attachments').column('thing_id').execute();
      await db.schema.createIndex('policy_attachments_group').on('policy_attachments').column('group_id').execute();
      await db.schema.createIndex('policy_attachments_certificate').on('policy_attachments').column('certificate_serial').execute();
      await db.schema
        .createTable('policy_change_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', int64, (c) => c.notNull())
        .execute();
      await sql`insert into policy_change_head (id, seq) values (1, 0)`.execute(db);
      await db.schema
        .createTable('policy_changes')
        .addColumn('seq', int64, (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('policy', 'text')
        .addColumn('thing', 'text')
        .addColumn('grp', 'text')
        .addColumn('certificate', 'text')
        .execute();
      await changeTriggers(db, dialect);
      // The default device policy, stored like any other so operators can read, version and analyze it.
      // Migrations run at a real time; the domain's Clock is not available here.
      const now = new Date().toISOString();
      await sql`insert into policies (name, default_version, latest_version, created_at, created_by, updated_at) values (${DEFAULT_POLICY_NAME}, 1, 1, ${now}, 'node', ${now})`.execute(db);
      await sql`insert into policy_versions (policy, version, document, created_at, created_by) values (${DEFAULT_POLICY_NAME}, 1, ${DEFAULT_POLICY_DOCUMENT}, ${now}, 'node')`.execute(db);
    },
  };
}
