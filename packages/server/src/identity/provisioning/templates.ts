import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../../audit/audit-log.js';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { checkAttributes, registryName, type Attributes } from '../registry/names.js';

/**
 * How a device that claims an identity is registered: the names it may take, its type, groups,
 * fixed attributes, the parameters it may send (each checked by a pattern, kept as attributes)
 * and the policies attached to every thing it provisions.
 */
export interface ProvisioningTemplate {
  readonly name: string;
  /** The thing name must match this whole (anchored) pattern. */
  readonly namePattern: string;
  readonly thingType: string | null;
  readonly groups: readonly string[];
  readonly attributes: Attributes;
  /** Parameter name → pattern its value must match; every parameter is required. */
  readonly parameters: Readonly<Record<string, string>>;
  readonly policies: readonly string[];
  readonly enabled: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export type TemplateDefinition = Pick<ProvisioningTemplate, 'namePattern'> & Partial<Pick<ProvisioningTemplate, 'thingType' | 'groups' | 'attributes' | 'parameters' | 'policies'>>;

const MAX_PATTERN = 256;

/** A pattern compiled to match a whole value, refused when it is not a valid regular expression. */
export function wholeMatch(pattern: string, field: string): RegExp {
  if (pattern.length === 0 || pattern.length > MAX_PATTERN) throw new FleetwardError('FW_ERR_VALIDATION', `${field} must be 1-${MAX_PATTERN} characters`, { field });
  try {
    return new RegExp(`^(?:${pattern})$`, 'u');
  } catch (error) {
    throw new FleetwardError('FW_ERR_VALIDATION', `${field} is not a valid regular expression: ${(error as Error).message}`, { field });
  }
}

export class ProvisioningTemplates {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  async create(name: string, definition: TemplateDefinition, actor: Actor): Promise<ProvisioningTemplate> {
    registryName(name, 'template');
    const checked = await this.#check(definition);
    const now = this.#deps.clock.now().toISOString();
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (await trx.selectFrom('provisioning_templates').select('name').where('name', '=', name).executeTakeFirst()) {
        throw new FleetwardError('FW_ERR_CONFLICT', `template ${name} already exists`, { template: name });
      }
      await trx.insertInto('provisioning_templates').values({ name, definition: JSON.stringify(checked), enabled: 1, created_at: now, updated_at: now }).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'template.create', outcome: 'success', target: `template:${name}`, details: { ...checked, groups: [...checked.groups], policies: [...checked.policies] } }]);
    });
    return this.get(name);
  }

  async setEnabled(name: string, enabled: boolean, actor: Actor): Promise<ProvisioningTemplate> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const result = await trx.updateTable('provisioning_templates').set({ enabled: enabled ? 1 : 0, updated_at: this.#deps.clock.now().toISOString() }).where('name', '=', name).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) throw notFound(name);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'template.update', outcome: 'success', target: `template:${name}`, details: { enabled } }]);
    });
    return this.get(name);
  }

  async get(name: string): Promise<ProvisioningTemplate> {
    const row = await this.#deps.store.db.selectFrom('provisioning_templates').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound(name);
    return toTemplate(row);
  }

  async list(): Promise<ProvisioningTemplate[]> {
    return (await this.#deps.store.db.selectFrom('provisioning_templates').selectAll().orderBy('name').execute()).map(toTemplate);
  }

  async #check(definition: TemplateDefinition): Promise<Required<TemplateDefinition>> {
    wholeMatch(definition.namePattern, 'namePattern');
    const parameters = definition.parameters ?? {};
    for (const [key, pattern] of Object.entries(parameters)) {
      registryName(key, 'attribute key');
      wholeMatch(pattern, `parameters.${key}`);
    }
    const attributes = checkAttributes(definition.attributes ?? {});
    const { db } = this.#deps.store;
    if (definition.thingType !== undefined && definition.thingType !== null && !(await db.selectFrom('thing_types').select('name').where('name', '=', definition.thingType).executeTakeFirst())) {
      throw new FleetwardError('FW_ERR_NOT_FOUND', `thing type ${definition.thingType} does not exist`, { thingType: definition.thingType });
    }
    const groups = [...new Set(definition.groups ?? [])];
    const found = groups.length === 0 ? [] : await db.selectFrom('thing_groups').select('name').where('name', 'in', groups).execute();
    const missing = groups.find((g) => !found.some((f) => f.name === g));
    if (missing !== undefined) throw new FleetwardError('FW_ERR_NOT_FOUND', `group ${missing} does not exist`, { group: missing });
    return { namePattern: definition.namePattern, thingType: definition.thingType ?? null, groups, attributes, parameters, policies: [...new Set(definition.policies ?? [])].map((p) => registryName(p, 'policy')) };
  }
}

function toTemplate(row: Tables['provisioning_templates']): ProvisioningTemplate {
  const definition = JSON.parse(row.definition) as Required<TemplateDefinition>;
  return { name: row.name, ...definition, enabled: row.enabled === 1, createdAt: row.created_at, updatedAt: row.updated_at };
}

function notFound(name: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `template ${name} does not exist`, { template: name });
}

/**
 * Attaches a template's policies to a thing it provisions, inside the provisioning transaction
 * (the access module does it; the identity module only knows the names).
 */
export interface TemplatePolicies {
  attachWithin(trx: Transaction<Tables>, thing: string, policies: readonly string[], actor: Actor): Promise<void>;
}
