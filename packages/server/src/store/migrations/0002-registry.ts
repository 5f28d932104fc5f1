import type { Kysely, Migration } from 'kysely';

/** Things, thing types, attributes (one row each, so filters are plain SQL on both dialects) and nested groups. */
export function registry(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('thing_types')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('require_hardware_key', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('things')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.references('thing_types.name'))
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('state_changed_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('things_state').on('things').columns(['state', 'name']).execute();
      await db.schema.createIndex('things_type').on('things').columns(['type', 'name']).execute();
      await db.schema
        .createTable('thing_attributes')
        .addColumn('thing_id', 'text', (c) => c.notNull().references('things.id').onDelete('cascade'))
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('thing_attributes_pk', ['thing_id', 'key'])
        .execute();
      await db.schema.createIndex('thing_attributes_key_value').on('thing_attributes').columns(['key', 'value']).execute();
      await db.schema
        .createTable('thing_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('parent_id', 'text', (c) => c.references('thing_groups.id'))
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('group_members')
        .addColumn('group_id', 'text', (c) => c.notNull().references('thing_groups.id').onDelete('cascade'))
        .addColumn('thing_id', 'text', (c) => c.notNull().references('things.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'thing_id'])
        .execute();
      await db.schema.createIndex('group_members_thing').on('group_members').column('thing_id').execute();
    },
  };
}
