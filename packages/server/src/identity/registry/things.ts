import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../../audit/audit-log.js';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { revokeCertificates } from '../certificate-repository.js';
import type { IdentityEvents } from '../events.js';
import type { Groups } from './groups.js';
import { allowedTransitions, canTransition, isFinal, type ThingState } from './lifecycle.js';
import { checkAttributes, thingName, type Attributes, type ThingName } from './names.js';

export interface Thing {
  readonly name: ThingName;
  readonly type: string | null;
  readonly state: ThingState;
  readonly attributes: Attributes;
  /** Groups the thing is directly in. */
  readonly groups: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly stateChangedAt: string;
}

export interface ThingQuery {
  readonly state?: ThingState;
  readonly type?: string;
  /** Things in this group or any group nested below it. */
  readonly group?: string;
  /** Every pair must match. */
  readonly attributes?: Readonly<Record<string, string>>;
  readonly namePrefix?: string;
  /** Names sort in order; a page starts after this name. */
  readonly after?: string;
  readonly limit: number;
}

export interface ThingPage {
  readonly things: readonly Thing[];
  /** The `after` of the next page, or null on the last page. */
  readonly next: string | null;
}

export interface ThingsDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly groups: Groups;
  readonly events: IdentityEvents;
}

export const LIST_LIMIT_MAX = 500;

/** The registry of things: unique names, a type, attributes, groups and a lifecycle state. */
export class Things {
  readonly #deps: ThingsDependencies;

  constructor(deps: ThingsDependencies) {
    this.#deps = deps;
  }

  async create(
    request: { readonly name: string; readonly type?: string; readonly attributes?: Readonly<Record<string, unknown>>; readonly groups?: readonly string[] },
    actor: Actor,
  ): Promise<Thing> {
    const name = thingName(request.name);
    await this.#deps.store.db.transaction().execute((trx) => this.createWithin(trx, { ...request, name, state: 'pending' }, actor));
    return this.get(name);
  }

  /** Creates a thing inside the caller's transaction (provisioning creates thing and certificate together). */
  async createWithin(
    trx: Transaction<Tables>,
    request: { readonly name: ThingName; readonly type?: string; readonly attributes?: Readonly<Record<string, unknown>>; readonly groups?: readonly string[]; readonly state: 'pending' | 'active' },
    actor: Actor,
  ): Promise<string> {
    const attributes = checkAttributes(request.attributes ?? {});
    if (await trx.selectFrom('things').select('id').where('name', '=', request.name).executeTakeFirst()) {
      throw new FleetwardError('FW_ERR_CONFLICT', `thing ${request.name} already exists`, { thing: request.name });
    }
    if (request.type !== undefined && !(await trx.selectFrom('thing_types').select('name').where('name', '=', request.type).executeTakeFirst())) {
      throw new FleetwardError('FW_ERR_NOT_FOUND', `thing type ${request.type} does not exist`, { thingType: request.type });
    }
    const groupIds = await groupIdsByName(trx, request.groups ?? []);
    const id = randomUUID();
    const now = this.#deps.clock.now().toISOString();
    await trx.insertInto('things').values({ id, name: request.name, type: request.type ?? null, state: request.state, created_at: now, updated_at: now, state_changed_at: now }).execute();
    await insertAttributes(trx, id, attributes);
    if (groupIds.length > 0) await trx.insertInto('group_members').values(groupIds.map((groupId) => ({ group_id: groupId, thing_id: id }))).execute();
    await this.#deps.audit.recordWithin(trx, [
      { ...actorFields(actor), action: 'thing.create', outcome: 'success', target: `thing:${request.name}`, details: { type: request.type ?? null, state: request.state, groups: [...(request.groups ?? [])] } },
    ]);
    return id;
  }

  async get(name: string): Promise<Thing> {
    const row = await this.#deps.store.db.selectFrom('things').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound(name);
    const [thing] = await this.#hydrate([row]);
    return thing as Thing;
  }

  /** The thing's internal id and state, for modules that link rows to it. */
  async ref(trx: Transaction<Tables>, name: string): Promise<{ readonly id: string; readonly name: ThingName; readonly state: ThingState; readonly type: string | null }> {
    const row = await trx.selectFrom('things').select(['id', 'name', 'state', 'type']).where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound(name);
    return { id: row.id, name: row.name as ThingName, state: row.state as ThingState, type: row.type };
  }

  async list(query: ThingQuery): Promise<ThingPage> {
    const limit = Math.min(Math.max(1, query.limit), LIST_LIMIT_MAX);
    let select = this.#deps.store.db.selectFrom('things').selectAll();
    if (query.state !== undefined) select = select.where('state', '=', query.state);
    if (query.type !== undefined) select = select.where('type', '=', query.type);
    if (query.namePrefix !== undefined) select = select.where('name', '>=', query.namePrefix).where('name', '<', `${query.namePrefix}\uffff`);
    if (query.after !== undefined) select = select.where('name', '>', query.after);
    if (query.group !== undefined) {
      const groupIds = await this.#deps.groups.subtreeIds(query.group);
      select = select.where('id', 'in', (eb) => eb.selectFrom('group_members').select('thing_id').where('group_id', 'in', groupIds));
    }
    for (const [key, value] of Object.entries(query.attributes ?? {})) {
      select = select.where((eb) => eb.exists(eb.selectFrom('thing_attributes').select('thing_id').whereRef('thing_attributes.thing_id', '=', 'things.id').where('key', '=', key).where('value', '=', value)));
    }
    const rows = await select.orderBy('name').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { things: await this.#hydrate(page), next: rows.length > limit ? (page.at(-1)?.name ?? null) : null };
  }

  /** Changes the type and attributes (`null` removes an attribute). Decommissioned things are read-only. */
  async update(name: string, changes: { readonly type?: string | null; readonly attributes?: Readonly<Record<string, string | null>> }, actor: Actor): Promise<Thing> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const thing = await this.ref(trx, name);
      if (isFinal(thing.state)) throw new FleetwardError('FW_ERR_CONFLICT', `thing ${name} is decommissioned and cannot change`, { thing: name });
      if (changes.type !== undefined && changes.type !== null && !(await trx.selectFrom('thing_types').select('name').where('name', '=', changes.type).executeTakeFirst())) {
        throw new FleetwardError('FW_ERR_NOT_FOUND', `thing type ${changes.type} does not exist`, { thingType: changes.type });
      }
      const current = await trx.selectFrom('thing_attributes').select(['key', 'value']).where('thing_id', '=', thing.id).execute();
      const merged: Record<string, string> = Object.fromEntries(current.map((a) => [a.key, a.value]));
      for (const [key, value] of Object.entries(changes.attributes ?? {})) {
        if (value === null) delete merged[key];
        else merged[key] = value;
      }
      const attributes = checkAttributes(merged);
      await trx.deleteFrom('thing_attributes').where('thing_id', '=', thing.id).execute();
      await insertAttributes(trx, thing.id, attributes);
      await trx
        .updateTable('things')
        .set({ ...(changes.type !== undefined && { type: changes.type }), updated_at: this.#deps.clock.now().toISOString() })
        .where('id', '=', thing.id)
        .execute();
      await this.#deps.audit.recordWithin(trx, [
        { ...actorFields(actor), action: 'thing.update', outcome: 'success', target: `thing:${name}`, details: { ...(changes.type !== undefined && { type: changes.type }), attributes: { ...(changes.attributes ?? {}) } } },
      ]);
    });
    return this.get(name);
  }

  /**
   * Moves a thing through its lifecycle along the transition table only. Decommissioning revokes
   * every certificate of the thing in the same transaction (revocation is final).
   */
  async setState(name: string, to: ThingState, actor: Actor, reason?: string): Promise<Thing> {
    let from: ThingState | undefined;
    let revoked: readonly string[] = [];
    try {
      await this.#deps.store.db.transaction().execute(async (trx) => {
        const thing = await this.ref(trx, name);
        from = thing.state;
        if (from === to) return;
        if (!canTransition(from, to)) {
          const allowed = allowedTransitions(from);
          throw new FleetwardError('FW_ERR_INVALID_TRANSITION', `thing ${name} cannot go from ${from} to ${to}${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ': decommissioned is final'}`, { thing: name, from, to });
        }
        await this.transitionWithin(trx, thing, to, actor, reason);
        if (to === 'decommissioned') {
          revoked = await revokeCertificates(trx, { thingId: thing.id }, 'cessationOfOperation', this.#deps.clock.now());
          if (revoked.length > 0) {
            await this.#deps.audit.recordWithin(trx, [
              { ...actorFields(actor), action: 'certificate.revoke', outcome: 'success', target: `thing:${name}`, details: { serials: [...revoked], reason: 'cessationOfOperation' } },
            ]);
          }
        }
      });
    } catch (error) {
      // Recorded after the transaction: on SQLite a second transaction cannot start inside the first.
      if (error instanceof FleetwardError && error.code === 'FW_ERR_INVALID_TRANSITION') {
        await this.#deps.audit.record({ ...actorFields(actor), action: 'thing.state', outcome: 'denied', target: `thing:${name}`, details: { from: from ?? null, to } });
      }
      throw error;
    }
    if (from !== undefined && from !== to) {
      this.#deps.events.emit('thingStateChanged', { thing: name, from, to });
      if (revoked.length > 0) this.#deps.events.emit('certificatesRevoked', { thing: name, serials: revoked, reason: 'cessationOfOperation' });
    }
    return this.get(name);
  }

  /** Records a permitted transition inside the caller's transaction. */
  async transitionWithin(trx: Transaction<Tables>, thing: { readonly id: string; readonly name: string; readonly state: ThingState }, to: ThingState, actor: Actor, reason?: string): Promise<void> {
    const now = this.#deps.clock.now().toISOString();
    await trx.updateTable('things').set({ state: to, state_changed_at: now, updated_at: now }).where('id', '=', thing.id).execute();
    await this.#deps.audit.recordWithin(trx, [
      { ...actorFields(actor), action: 'thing.state', outcome: 'success', target: `thing:${thing.name}`, details: { from: thing.state, to, ...(reason !== undefined && { reason }) } },
    ]);
  }

  async #hydrate(rows: readonly Tables['things'][]): Promise<Thing[]> {
    if (rows.length === 0) return [];
    const { db } = this.#deps.store;
    const ids = rows.map((r) => r.id);
    const attributes = await db.selectFrom('thing_attributes').select(['thing_id', 'key', 'value']).where('thing_id', 'in', ids).orderBy('key').execute();
    const groups = await db
      .selectFrom('group_members')
      .innerJoin('thing_groups', 'thing_groups.id', 'group_members.group_id')
      .select(['group_members.thing_id', 'thing_groups.name'])
      .where('group_members.thing_id', 'in', ids)
      .orderBy('thing_groups.name')
      .execute();
    return rows.map((row) => ({
      name: row.name as ThingName,
      type: row.type,
      state: row.state as ThingState,
      attributes: Object.fromEntries(attributes.filter((a) => a.thing_id === row.id).map((a) => [a.key, a.value])),
      groups: groups.filter((g) => g.thing_id === row.id).map((g) => g.name),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      stateChangedAt: row.state_changed_at,
    }));
  }
}

async function insertAttributes(trx: Transaction<Tables>, thingId: string, attributes: Attributes): Promise<void> {
  const rows = Object.entries(attributes).map(([key, value]) => ({ thing_id: thingId, key, value }));
  if (rows.length > 0) await trx.insertInto('thing_attributes').values(rows).execute();
}

async function groupIdsByName(trx: Transaction<Tables>, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const rows = await trx.selectFrom('thing_groups').select(['id', 'name']).where('name', 'in', [...names]).execute();
  const missing = names.filter((n) => !rows.some((r) => r.name === n));
  if (missing.length > 0) throw new FleetwardError('FW_ERR_NOT_FOUND', `group ${missing[0]} does not exist`, { group: missing[0] });
  return rows.map((r) => r.id);
}

function notFound(name: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `thing ${name} does not exist`, { thing: name });
}
