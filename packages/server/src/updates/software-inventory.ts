import type { InventoryReport } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Things } from '../identity/registry/things.js';
import type { Store } from '../store/store.js';
import type { DeviceSoftwareTable } from '../store/tables.js';
import type { SignedTarget } from './tuf/tuf-repository.js';
import { UPDATES_ACTOR, type RaiseAlert } from './types.js';

/** What a device runs, as it last reported. */
export interface DeviceSoftware {
  readonly thing: string;
  readonly firmwareVersion: string;
  readonly securityVersion: number | null;
  readonly imageHash: string | null;
  readonly agentVersion: string;
  /** False: the image is not a signed target of the device's type. */
  readonly authorized: boolean;
  readonly reportedAt: string;
}

export interface SoftwareSummary {
  readonly devices: number;
  readonly unauthorized: number;
  readonly byVersion: readonly { readonly firmwareVersion: string; readonly securityVersion: number | null; readonly devices: number }[];
}

/** Whether an image is one the repository signed for this thing type; null when nothing is signed for the type (nothing to compare with). */
export function imageAuthorized(imageHash: string | null, thingType: string | null, signed: Iterable<SignedTarget>): boolean | null {
  const forType = [...signed].filter((t) => thingType !== null && t.hardware.includes(thingType));
  if (forType.length === 0 || imageHash === null) return null;
  const hex = imageHash.replace(/^sha256:/, '');
  return forType.some((t) => t.sha256 === hex);
}

/**
 * The software inventory (rule 4): what each device reports running (`$fw/things/{thing}/inventory`),
 * queryable per device and summarized by version. A device whose image hash is not a signed target
 * of its type raises an "unauthorized firmware" alert once per image and, when configured, is
 * quarantined (it keeps only what quarantine policies allow).
 */
export class SoftwareInventory {
  readonly #deps: SoftwareInventoryDependencies;

  constructor(deps: SoftwareInventoryDependencies) {
    this.#deps = deps;
  }

  async record(thing: string, thingType: string | null, report: InventoryReport): Promise<DeviceSoftware> {
    const verdict = imageAuthorized(report.imageHash, thingType, (await this.#deps.signedTargets()).values());
    const previous = await this.#deps.store.db.selectFrom('device_software').selectAll().where('thing', '=', thing).executeTakeFirst();
    const row: DeviceSoftwareTable = {
      thing,
      firmware_version: report.firmwareVersion,
      security_version: report.securityVersion ?? null,
      image_hash: report.imageHash,
      agent_version: report.agentVersion,
      authorized: verdict === false ? 0 : 1,
      reported_at: this.#deps.clock.now().toISOString(),
    };
    await this.#deps.store.db
      .insertInto('device_software')
      .values(row)
      .onConflict((oc) => oc.column('thing').doUpdateSet({ firmware_version: row.firmware_version, security_version: row.security_version, image_hash: row.image_hash, agent_version: row.agent_version, authorized: row.authorized, reported_at: row.reported_at }))
      .execute();
    const newlyUnauthorized = verdict === false && (previous === undefined || previous.authorized === 1 || previous.image_hash !== report.imageHash);
    if (newlyUnauthorized) await this.#unauthorized(thing, report);
    return softwareOf(row);
  }

  async get(thing: string): Promise<DeviceSoftware | null> {
    const row = await this.#deps.store.db.selectFrom('device_software').selectAll().where('thing', '=', thing).executeTakeFirst();
    return row === undefined ? null : softwareOf(row);
  }

  async list(filter: { readonly version?: string; readonly unauthorized?: boolean; readonly limit?: number } = {}): Promise<DeviceSoftware[]> {
    let query = this.#deps.store.db.selectFrom('device_software').selectAll();
    if (filter.version !== undefined) query = query.where('firmware_version', '=', filter.version);
    if (filter.unauthorized === true) query = query.where('authorized', '=', 0);
    const rows = await query.orderBy('thing').limit(filter.limit ?? 1000).execute();
    return rows.map(softwareOf);
  }

  async summary(): Promise<SoftwareSummary> {
    const rows = await this.#deps.store.db
      .selectFrom('device_software')
      .select((eb) => ['firmware_version', 'security_version', eb.fn.countAll<number | string>().as('devices')])
      .groupBy(['firmware_version', 'security_version'])
      .orderBy('firmware_version')
      .execute();
    const unauthorized = await this.#deps.store.db.selectFrom('device_software').select((eb) => eb.fn.countAll<number | string>().as('n')).where('authorized', '=', 0).executeTakeFirstOrThrow();
    const byVersion = rows.map((r) => ({ firmwareVersion: r.firmware_version, securityVersion: r.security_version, devices: Number(r.devices) }));
    return { devices: byVersion.reduce((sum, v) => sum + v.devices, 0), unauthorized: Number(unauthorized.n), byVersion };
  }

  async #unauthorized(thing: string, report: InventoryReport): Promise<void> {
    const quarantine = this.#deps.quarantineUnauthorized;
    let quarantined = false;
    if (quarantine) {
      quarantined = await this.#deps.things.setState(thing, 'quarantined', UPDATES_ACTOR, 'unauthorized firmware').then(
        () => true,
        () => false,
      );
    }
    await this.#deps.audit.record({ actor: UPDATES_ACTOR.name, action: 'firmware.unauthorized', outcome: 'failure', target: `thing:${thing}`, details: { imageHash: report.imageHash, firmwareVersion: report.firmwareVersion, quarantined } });
    await this.#deps.raiseAlert({
      kind: 'unauthorized-firmware',
      thing,
      message: `${thing} runs an image that is not a signed target of its type (${report.imageHash ?? 'no hash'}, reported as ${report.firmwareVersion})${quarantined ? '; quarantined' : ''}`,
      details: { imageHash: report.imageHash, quarantined },
    });
  }
}

export interface SoftwareInventoryDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly things: Pick<Things, 'setState'>;
  readonly signedTargets: () => Promise<ReadonlyMap<string, SignedTarget>>;
  readonly raiseAlert: RaiseAlert;
  /** Quarantine a device that runs unauthorized firmware (FLEETWARD_UPDATES_QUARANTINE_UNAUTHORIZED). */
  readonly quarantineUnauthorized: boolean;
}

function softwareOf(row: DeviceSoftwareTable): DeviceSoftware {
  return {
    thing: row.thing,
    firmwareVersion: row.firmware_version,
    securityVersion: row.security_version,
    imageHash: row.image_hash,
    agentVersion: row.agent_version,
    authorized: row.authorized === 1,
    reportedAt: row.reported_at,
  };
}
