import { FleetwardError, type ErrorCode } from '@fleetward/protocol';
import type { Actor } from '../audit/audit-events.js';
import type { Store } from '../store/store.js';
import type { KeyStorage } from './certificate-repository.js';
import { codeOf, type Certificates, type IssuedCertificate, type PreparedCertificate } from './certificates.js';
import type { IdentityEvents } from './events.js';
import { thingName } from './registry/names.js';
import type { Things } from './registry/things.js';

/** One device of a production run: its registry entry and the CSR its key made. */
export interface ManufacturedDevice {
  readonly name: string;
  readonly type?: string;
  readonly groups?: readonly string[];
  readonly attributes?: Readonly<Record<string, string>>;
  readonly csr: Buffer | string;
  readonly keyStorage?: KeyStorage;
}

export type ManufacturingResult =
  | { readonly name: string; readonly ok: true; readonly certificate: IssuedCertificate }
  | { readonly name: string; readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string; readonly serial?: string } };

/** Largest batch one call accepts: one transaction's worth. */
export const MANUFACTURING_BATCH_MAX = 500;

/**
 * Bulk provisioning for a production line. Each device is made whole or not at all: its thing
 * (type, groups, attributes) and its certificate are written in the same transaction. A device
 * that already has an active certificate is reported `FW_ERR_CONFLICT` with its serial, so a
 * re-run after a crash can pick up where it stopped.
 */
export class Manufacturing {
  readonly #deps: { readonly store: Store; readonly things: Things; readonly certificates: Certificates; readonly events: IdentityEvents };

  constructor(deps: { readonly store: Store; readonly things: Things; readonly certificates: Certificates; readonly events: IdentityEvents }) {
    this.#deps = deps;
  }

  async provision(devices: readonly ManufacturedDevice[], actor: Actor): Promise<ManufacturingResult[]> {
    if (devices.length > MANUFACTURING_BATCH_MAX) throw new FleetwardError('FW_ERR_VALIDATION', `at most ${MANUFACTURING_BATCH_MAX} devices per batch`, { field: 'devices' });
    const names = devices.map((d) => d.name);
    if (new Set(names).size !== names.length) throw new FleetwardError('FW_ERR_VALIDATION', 'a device appears twice in the batch', { field: 'devices' });
    const results = new Map<string, ManufacturingResult>();
    const ready: { device: ManufacturedDevice; prepared: PreparedCertificate }[] = [];
    const existing = await this.#alreadyProvisioned(names.filter(isValidName));
    for (const device of devices) {
      try {
        thingName(device.name);
        const serial = existing.get(device.name);
        if (serial !== undefined) throw new FleetwardError('FW_ERR_CONFLICT', `thing ${device.name} is already provisioned`, { thing: device.name, serial });
        const prepared = await this.#deps.certificates.prepare({ subject: device.name, kind: 'device', csr: device.csr, via: 'manufacturing', ...(device.keyStorage && { keyStorage: device.keyStorage }) });
        ready.push({ device, prepared });
      } catch (error) {
        results.set(device.name, failure(device.name, error));
      }
    }
    try {
      for (const result of await this.#commit(ready, actor)) results.set(result.name, result);
    } catch {
      // One device broke the batch (a name taken meanwhile, a bad group): each on its own.
      for (const item of ready) {
        try {
          for (const result of await this.#commit([item], actor)) results.set(result.name, result);
        } catch (error) {
          results.set(item.device.name, failure(item.device.name, error));
        }
      }
    }
    const ordered = devices.map((d) => results.get(d.name) as ManufacturingResult);
    for (const result of ordered) {
      if (!result.ok) await this.#deps.certificates.recordRefusal({ subject: result.name, kind: 'device', via: 'manufacturing' }, result.error.code, actor);
    }
    return ordered;
  }

  async #commit(items: readonly { device: ManufacturedDevice; prepared: PreparedCertificate }[], actor: Actor): Promise<ManufacturingResult[]> {
    if (items.length === 0) return [];
    const { results, activated } = await this.#deps.store.db.transaction().execute(async (trx) => {
      for (const { device } of items) {
        await this.#deps.things.createWithin(
          trx,
          { name: thingName(device.name), state: 'pending', ...(device.type && { type: device.type }), ...(device.groups && { groups: device.groups }), ...(device.attributes && { attributes: device.attributes }) },
          actor,
        );
      }
      const outcome = await this.#deps.certificates.commitWithin(trx, items.map(({ prepared }) => ({ prepared, actor })));
      const refused = outcome.results.find((r): r is FleetwardError => r instanceof FleetwardError);
      // A device whose certificate is refused must not be left behind as a thing without one.
      if (refused) throw refused;
      return outcome;
    });
    for (const thing of activated) this.#deps.events.emit('thingStateChanged', { thing, from: 'pending', to: 'active' });
    return items.map(({ device }, i) => ({ name: device.name, ok: true, certificate: results[i] as IssuedCertificate }));
  }

  /** Serials of the active certificates of those devices that already have one. */
  async #alreadyProvisioned(names: readonly string[]): Promise<Map<string, string>> {
    if (names.length === 0) return new Map();
    const rows = await this.#deps.store.db
      .selectFrom('certificates')
      .innerJoin('things', 'things.id', 'certificates.thing_id')
      .select(['things.name', 'certificates.serial'])
      .where('things.name', 'in', [...names])
      .where('certificates.status', '=', 'active')
      .execute();
    return new Map(rows.map((r) => [r.name, r.serial]));
  }
}

function isValidName(name: string): boolean {
  try {
    thingName(name);
    return true;
  } catch {
    return false;
  }
}

function failure(name: string, error: unknown): ManufacturingResult {
  const serial = error instanceof FleetwardError && typeof error.details.serial === 'string' ? error.details.serial : undefined;
  return { name, ok: false, error: { code: codeOf(error), message: error instanceof Error ? error.message : String(error), ...(serial !== undefined && { serial }) } };
}
