import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { canonicalJson, type JsonValue } from '../json.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import { parseContract, type DataContract } from './contract.js';

export interface ContractSummary {
  readonly name: string;
  readonly version: number;
  readonly topic: string;
  readonly thingType: string | null;
  readonly description: string;
  readonly fields: number;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface AppliedContract {
  readonly name: string;
  readonly version: number;
  readonly outcome: 'created' | 'unchanged';
}

/** At most this many contracts in one apply. */
export const MAX_CONTRACTS_PER_APPLY = 200;

/**
 * Data contracts and their versions. Versions are immutable: applying a document whose version
 * exists changes nothing if it is identical and is a conflict if it differs, and a new version
 * must be higher than the latest. The latest version of each contract is the one in force.
 */
export class DataContracts {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };
  readonly #listeners: (() => Promise<unknown>)[] = [];

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  /** Called after this process applied contracts (the ingest reloads at once; other nodes on their refresh). */
  onChange(listener: () => Promise<unknown>): void {
    this.#listeners.push(listener);
  }

  /** Applies contract documents all together or not at all. */
  async apply(documents: readonly unknown[], actor: Actor): Promise<AppliedContract[]> {
    if (documents.length === 0 || documents.length > MAX_CONTRACTS_PER_APPLY) throw new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', `apply 1-${MAX_CONTRACTS_PER_APPLY} contracts at once`, {});
    const parsed = documents.map((document, i) => {
      try {
        return parseContract(document);
      } catch (error) {
        if (error instanceof FleetwardError && documents.length > 1) throw new FleetwardError(error.code, `contract #${i + 1}: ${error.message}`, { ...error.details, index: i });
        throw error;
      }
    });
    const names = parsed.map((c) => c.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate !== undefined) throw new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', `contract ${duplicate} appears twice in one apply`, { name: duplicate });
    const now = this.#deps.clock.now().toISOString();
    const applied = await this.#deps.store.db.transaction().execute(async (trx) => {
      const results: AppliedContract[] = [];
      for (const contract of parsed) {
        const definition = canonicalJson(contract.document);
        const existing = await trx.selectFrom('data_contracts').select('definition').where('name', '=', contract.name).where('version', '=', contract.version).executeTakeFirst();
        if (existing !== undefined) {
          if (existing.definition !== definition) throw new FleetwardError('FW_ERR_CONFLICT', `contract ${contract.name} version ${contract.version} exists with other content: versions are immutable, apply a new version`, { name: contract.name, version: contract.version });
          results.push({ name: contract.name, version: contract.version, outcome: 'unchanged' });
          continue;
        }
        const latest = await trx.selectFrom('data_contracts').select((eb) => eb.fn.max('version').as('version')).where('name', '=', contract.name).executeTakeFirst();
        const latestVersion = latest?.version === null || latest?.version === undefined ? 0 : Number(latest.version);
        if (contract.version < latestVersion) throw new FleetwardError('FW_ERR_CONFLICT', `contract ${contract.name} is at version ${latestVersion}: a new version must be higher`, { name: contract.name, version: contract.version, latest: latestVersion });
        await trx.insertInto('data_contracts').values({ name: contract.name, version: contract.version, definition, topic: contract.topic, thing_type: contract.thingType, created_at: now, created_by: actor.name }).execute();
        results.push({ name: contract.name, version: contract.version, outcome: 'created' });
      }
      const created = results.filter((r) => r.outcome === 'created');
      if (created.length > 0) {
        await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'data.contract.apply', outcome: 'success', details: { contracts: created.map((r) => `${r.name}@${r.version}`) } }]);
      }
      return results;
    });
    if (applied.some((r) => r.outcome === 'created')) await Promise.all(this.#listeners.map((listener) => listener()));
    return applied;
  }

  /** The version in force of every contract. */
  async active(): Promise<DataContract[]> {
    const rows = await this.#deps.store.db.selectFrom('data_contracts').selectAll().orderBy('name').orderBy('version', 'desc').execute();
    const latest = rows.filter((row, i) => i === 0 || rows[i - 1]?.name !== row.name);
    return latest.map(toContract);
  }

  /** Every version of every contract (for reading stored data written under older versions). */
  async allVersions(): Promise<DataContract[]> {
    return (await this.#deps.store.db.selectFrom('data_contracts').selectAll().orderBy('name').orderBy('version').execute()).map(toContract);
  }

  async list(): Promise<ContractSummary[]> {
    const rows = await this.#deps.store.db.selectFrom('data_contracts').selectAll().orderBy('name').orderBy('version', 'desc').execute();
    return rows.filter((row, i) => i === 0 || rows[i - 1]?.name !== row.name).map((row) => summaryOf(row, toContract(row)));
  }

  async get(name: string, version?: number): Promise<{ readonly summary: ContractSummary; readonly document: JsonValue; readonly versions: readonly number[] }> {
    const rows = await this.#deps.store.db.selectFrom('data_contracts').selectAll().where('name', '=', name).orderBy('version', 'desc').execute();
    const row = version === undefined ? rows[0] : rows.find((r) => r.version === version);
    if (row === undefined) throw new FleetwardError('FW_ERR_NOT_FOUND', `data contract ${name}${version === undefined ? '' : ` version ${version}`} does not exist`, { name });
    const contract = toContract(row);
    return { summary: summaryOf(row, contract), document: contract.document, versions: rows.map((r) => r.version) };
  }

  /** Changes whenever a contract version is added anywhere (versions are never removed). */
  async stamp(): Promise<number> {
    const row = await this.#deps.store.db.selectFrom('data_contracts').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}

function toContract(row: Tables['data_contracts']): DataContract {
  return parseContract(JSON.parse(row.definition));
}

function summaryOf(row: Tables['data_contracts'], contract: DataContract): ContractSummary {
  return { name: row.name, version: row.version, topic: row.topic, thingType: row.thing_type, description: contract.description, fields: contract.fields.length, createdAt: row.created_at, createdBy: row.created_by };
}
