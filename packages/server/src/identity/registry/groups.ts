import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../../audit/audit-log.js';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { Clock } from '../../clock.js';
import { lockForTransaction } from '../../store/locks.js';
import { PreparedQuery } from '../../store/prepared-query.js';
import type { Database, Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { registryName } from './names.js';
import { checkDescription } from './thing-types.js';

/** Static groups of things, nested; what is attached to a group applies to its subgroups' things too. */
export interface Group {
  readonly name: string;
  readonly parent: string | null;
  /** Ancestors from the root down to the parent. */
  readonly path: readonly string[];
  readonly children: readonly string[];
  readonly description: string;
  readonly memberCount: number;
  readonly createdAt: string;
}

export const GROUP_LIMITS = { maxDepth: 7, maxGroupsPerThing: 10 } as const;

interface GroupRow {
  readonly id: string;
  readonly name: string;
  readonly parent_id: string | null;
}

export class Groups {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  async create(request: { readonly name: string; readonly parent?: string; readonly description?: string }, actor: Actor): Promise<Group> {
    const name = registryName(request.name, 'group');
    const description = checkDescription(request.description ?? '');
    const { db, dialect } = this.#deps.store;
    await db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, dialect, 'fleetward:groups');
      const all = await allGroups(trx);
      if (all.some((g) => g.name === name)) throw new FleetwardError('FW_ERR_CONFLICT', `group ${name} already exists`, { group: name });
      const parent = request.parent === undefined ? null : all.find((g) => g.name === request.parent);
      if (parent === undefined) throw notFound(request.parent as string);
      if (parent !== null && ancestry(all, parent).length + 1 >= GROUP_LIMITS.maxDepth) {
        throw new FleetwardError('FW_ERR_VALIDATION', `groups nest at most ${GROUP_LIMITS.maxDepth} deep`, { field: 'parent' });
      }
      await trx.insertInto('thing_groups').values({ id: randomUUID(), name, parent_id: parent?.id ?? null, description, created_at: this.#deps.clock.now().toISOString() }).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'group.create', outcome: 'success', target: `group:${name}`, details: { parent: parent?.name ?? null } }]);
    });
    return this.get(name);
  }

  /** Deletes a group without subgroups; its things leave it. */
  async delete(name: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const group = await groupByName(trx, name);
      const child = await trx.selectFrom('thing_groups').select('name').where('parent_id', '=', group.id).limit(1).executeTakeFirst();
      if (child) throw new FleetwardError('FW_ERR_CONFLICT', `group ${name} has subgroup ${child.name}; delete or move its subgroups first`, { group: name });
      const members = await trx.deleteFrom('group_members').where('group_id', '=', group.id).executeTakeFirst();
      await trx.deleteFrom('thing_groups').where('id', '=', group.id).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'group.delete', outcome: 'success', target: `group:${name}`, details: { membersRemoved: Number(members.numDeletedRows) } }]);
    });
  }

  async addThing(groupName: string, thing: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const group = await groupByName(trx, groupName);
      const row = await trx.selectFrom('things').select(['id', 'state']).where('name', '=', thing).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `thing ${thing} does not exist`, { thing });
      if (row.state === 'decommissioned') throw new FleetwardError('FW_ERR_CONFLICT', `thing ${thing} is decommissioned`, { thing });
      const current = await trx.selectFrom('group_members').select('group_id').where('thing_id', '=', row.id).execute();
      if (current.some((m) => m.group_id === group.id)) return;
      if (current.length >= GROUP_LIMITS.maxGroupsPerThing) {
        throw new FleetwardError('FW_ERR_CONFLICT', `thing ${thing} is already in ${GROUP_LIMITS.maxGroupsPerThing} groups`, { thing });
      }
      await trx.insertInto('group_members').values({ group_id: group.id, thing_id: row.id }).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'group.add-thing', outcome: 'success', target: `thing:${thing}`, details: { group: groupName } }]);
    });
  }

  async removeThing(groupName: string, thing: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const group = await groupByName(trx, groupName);
      const row = await trx.selectFrom('things').select('id').where('name', '=', thing).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `thing ${thing} does not exist`, { thing });
      const removed = await trx.deleteFrom('group_members').where('group_id', '=', group.id).where('thing_id', '=', row.id).executeTakeFirst();
      if (Number(removed.numDeletedRows) === 0) throw new FleetwardError('FW_ERR_NOT_FOUND', `thing ${thing} is not in group ${groupName}`, { thing, group: groupName });
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'group.remove-thing', outcome: 'success', target: `thing:${thing}`, details: { group: groupName } }]);
    });
  }

  async get(name: string): Promise<Group> {
    const { db } = this.#deps.store;
    const all = await allGroups(db);
    const group = all.find((g) => g.name === name);
    if (!group) throw notFound(name);
    const count = await db.selectFrom('group_members').select((eb) => eb.fn.countAll<number>().as('n')).where('group_id', '=', group.id).executeTakeFirstOrThrow();
    const row = await db.selectFrom('thing_groups').select(['description', 'created_at']).where('id', '=', group.id).executeTakeFirstOrThrow();
    return {
      name,
      parent: all.find((g) => g.id === group.parent_id)?.name ?? null,
      path: ancestry(all, group).map((g) => g.name),
      children: all.filter((g) => g.parent_id === group.id).map((g) => g.name).sort(),
      description: row.description,
      memberCount: Number(count.n),
      createdAt: row.created_at,
    };
  }

  async list(): Promise<Group[]> {
    const names = (await allGroups(this.#deps.store.db)).map((g) => g.name).sort();
    return Promise.all(names.map((name) => this.get(name)));
  }

  /** The ids of a group and of every group nested below it. */
  async subtreeIds(name: string): Promise<string[]> {
    const all = await allGroups(this.#deps.store.db);
    const root = all.find((g) => g.name === name);
    if (!root) throw notFound(name);
    const ids = [root.id];
    for (let i = 0; i < ids.length; i++) ids.push(...all.filter((g) => g.parent_id === ids[i]).map((g) => g.id));
    return ids;
  }

  /** A thing's groups: those it is in, and with their ancestors (what policies inherit from). */
  async groupsOf(thing: string): Promise<{ readonly direct: readonly string[]; readonly effective: readonly string[] }> {
    const rows = await groupLineage.run(this.#deps.store.db, thing);
    const direct = rows.filter((row) => Number(row.direct) === 1).map((row) => row.name);
    return { direct: direct.sort(), effective: [...new Set(rows.map((row) => row.name))].sort() };
  }
}

async function allGroups(db: Database | Transaction<Tables>): Promise<GroupRow[]> {
  return db.selectFrom('thing_groups').select(['id', 'name', 'parent_id']).execute();
}

async function groupByName(db: Database | Transaction<Tables>, name: string): Promise<GroupRow> {
  const row = await db.selectFrom('thing_groups').select(['id', 'name', 'parent_id']).where('name', '=', name).executeTakeFirst();
  if (!row) throw notFound(name);
  return row;
}

/** Ancestors of a group, root first. */
function ancestry(all: readonly GroupRow[], group: GroupRow): GroupRow[] {
  const chain: GroupRow[] = [];
  for (let parent = all.find((g) => g.id === group.parent_id); parent; parent = all.find((g) => g.id === parent?.parent_id)) {
    chain.unshift(parent);
    if (chain.length > GROUP_LIMITS.maxDepth) break;
  }
  return chain;
}

function notFound(name: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `group ${name} does not exist`, { group: name });
}

/**
 * One query walks up from the thing's groups: admission asks this for every connect (prepared),
 * and loading every group of a large registry to walk it here cost more than the connect.
 */
const groupLineage = new PreparedQuery((db, thing: string) => ({
  compile: () =>
    sql<{ name: string; direct: number }>`
      with recursive direct_groups(id) as (
        select group_members.group_id from group_members inner join things on things.id = group_members.thing_id where things.name = ${thing}
      ), lineage(id, name, parent_id, depth) as (
        select id, name, parent_id, 0 from thing_groups where id in (select id from direct_groups)
        union
        select thing_groups.id, thing_groups.name, thing_groups.parent_id, lineage.depth + 1 from thing_groups inner join lineage on thing_groups.id = lineage.parent_id where lineage.depth < ${GROUP_LIMITS.maxDepth}
      )
      select distinct name, case when id in (select id from direct_groups) then 1 else 0 end as direct from lineage`.compile(db),
}));
