import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../../audit/audit-log.js';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { registryName } from './names.js';

export interface ThingType {
  readonly name: string;
  readonly description: string;
  /** Things of this type must hold their private key in hardware (PKCS#11 token or TPM). */
  readonly requireHardwareKey: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ThingTypeChanges {
  readonly description?: string;
  readonly requireHardwareKey?: boolean;
}

const MAX_DESCRIPTION = 1024;

/** Kinds of things (a product model, a device class); each thing has at most one. */
export class ThingTypes {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  async create(request: { readonly name: string } & ThingTypeChanges, actor: Actor): Promise<ThingType> {
    const name = registryName(request.name, 'thing type');
    const description = checkDescription(request.description ?? '');
    const now = this.#deps.clock.now().toISOString();
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (await trx.selectFrom('thing_types').select('name').where('name', '=', name).executeTakeFirst()) {
        throw new FleetwardError('FW_ERR_CONFLICT', `thing type ${name} already exists`, { thingType: name });
      }
      const requireHardwareKey = request.requireHardwareKey === true;
      await trx.insertInto('thing_types').values({ name, description, require_hardware_key: requireHardwareKey ? 1 : 0, created_at: now, updated_at: now }).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'thing-type.create', outcome: 'success', target: `thing-type:${name}`, details: { requireHardwareKey } }]);
    });
    return this.get(name);
  }

  async update(name: string, changes: ThingTypeChanges, actor: Actor): Promise<ThingType> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('thing_types').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) throw notFound(name);
      await trx
        .updateTable('thing_types')
        .set({
          ...(changes.description !== undefined && { description: checkDescription(changes.description) }),
          ...(changes.requireHardwareKey !== undefined && { require_hardware_key: changes.requireHardwareKey ? 1 : 0 }),
          updated_at: this.#deps.clock.now().toISOString(),
        })
        .where('name', '=', name)
        .execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'thing-type.update', outcome: 'success', target: `thing-type:${name}`, details: { ...changes } }]);
    });
    return this.get(name);
  }

  /** Deletes a type that no thing uses. */
  async delete(name: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (!(await trx.selectFrom('thing_types').select('name').where('name', '=', name).executeTakeFirst())) throw notFound(name);
      const used = await trx.selectFrom('things').select('name').where('type', '=', name).limit(1).executeTakeFirst();
      if (used) throw new FleetwardError('FW_ERR_CONFLICT', `thing type ${name} is used by thing ${used.name} (and maybe others)`, { thingType: name });
      await trx.deleteFrom('thing_types').where('name', '=', name).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'thing-type.delete', outcome: 'success', target: `thing-type:${name}` }]);
    });
  }

  async get(name: string): Promise<ThingType> {
    const row = await this.#deps.store.db.selectFrom('thing_types').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound(name);
    return toThingType(row);
  }

  async list(): Promise<ThingType[]> {
    const rows = await this.#deps.store.db.selectFrom('thing_types').selectAll().orderBy('name').execute();
    return rows.map(toThingType);
  }
}

function toThingType(row: Tables['thing_types']): ThingType {
  return { name: row.name, description: row.description, requireHardwareKey: row.require_hardware_key === 1, createdAt: row.created_at, updatedAt: row.updated_at };
}

function notFound(name: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `thing type ${name} does not exist`, { thingType: name });
}

export function checkDescription(description: string): string {
  if (description.length > MAX_DESCRIPTION || /[\p{Cc}]/u.test(description.replace(/\n/g, ''))) {
    throw new FleetwardError('FW_ERR_VALIDATION', `a description is at most ${MAX_DESCRIPTION} printable characters`, { field: 'description' });
  }
  return description;
}
