import type { Kysely } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { Role } from '../access/roles.js';
import type { Tables } from '../store/tables.js';
import { clearanceAllows, type DataGrants } from './classification.js';
import { PURPOSE_NAME, type DataContract, type FieldSpec } from './contract.js';

/**
 * What a purpose-bound reader may see of stored telemetry, one rule for every way data leaves the
 * store (the query API, webhook consumers): a field is disclosed only if its contract declares the
 * purpose for it and its class is within the reader's clearance.
 */
export function discloses(spec: FieldSpec | undefined, purpose: string, role: Role, grants: DataGrants): spec is FieldSpec {
  return spec !== undefined && spec.purposes.includes(purpose) && clearanceAllows(grants, role, spec.classification);
}

/** A declared purpose, or FW_ERR_PURPOSE_REQUIRED / FW_ERR_VALIDATION. */
export function requirePurpose(purpose: string | undefined): string {
  if (purpose === undefined || purpose === '') throw new FleetwardError('FW_ERR_PURPOSE_REQUIRED', 'declare why you read this data: --purpose / purpose=<name>, one the data contracts declare', {});
  if (!PURPOSE_NAME.test(purpose)) throw new FleetwardError('FW_ERR_VALIDATION', 'purpose is a lower-case name such as "billing"', { field: 'purpose' });
  return purpose;
}

/** The field specs of every contract version a stored row may name, looked up by name and version. */
export class FieldSpecIndex {
  readonly #contracts: { allVersions(): Promise<DataContract[]> };
  #specs = new Map<string, ReadonlyMap<string, FieldSpec>>();

  constructor(contracts: { allVersions(): Promise<DataContract[]> }) {
    this.#contracts = contracts;
  }

  async of(contract: string, version: number): Promise<ReadonlyMap<string, FieldSpec>> {
    const key = `${contract}@${version}`;
    let specs = this.#specs.get(key);
    if (specs === undefined) {
      this.#specs = new Map((await this.#contracts.allVersions()).map((c) => [`${c.name}@${c.version}`, new Map(c.fields.map((f) => [f.path, f]))]));
      specs = this.#specs.get(key) ?? new Map<string, FieldSpec>();
      // A version no longer known discloses nothing, and is not looked up again for every row.
      this.#specs.set(key, specs);
    }
    return specs;
  }
}

/** A field disclosed to a reader, with its contract. */
export type DisclosedField = FieldSpec & { readonly contract: string };

/** Notes when each disclosed field was last read for the purpose (the inventory lists fields nobody reads). */
export async function noteFieldReads(trx: Kysely<Tables>, disclosed: Iterable<DisclosedField>, purpose: string, now: string): Promise<void> {
  for (const spec of disclosed) {
    await trx
      .insertInto('data_field_reads')
      .values({ contract: spec.contract, field: spec.path, purpose, last_read_at: now })
      .onConflict((oc) => oc.columns(['contract', 'field', 'purpose']).doUpdateSet({ last_read_at: now }))
      .execute();
  }
}
