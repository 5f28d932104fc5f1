import type { Readable } from 'node:stream';
import { FleetwardError } from '@fleetward/protocol';
import semver from 'semver';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { ThingTypes } from '../identity/registry/thing-types.js';
import type { Store } from '../store/store.js';
import type { FirmwareArtifactsTable } from '../store/tables.js';
import type { ArtifactStore } from './artifact-store.js';
import { parseCycloneDx } from './sbom.js';
import type { FirmwareArtifact } from './types.js';

/** What an operator says about an artifact when uploading it. */
export interface ArtifactRequest {
  /** Product name; defaults to the file's base name. */
  readonly name: string;
  readonly version: string;
  readonly securityVersion: number;
  readonly hardware: readonly string[];
  readonly releaseNotes?: string;
  /** CycloneDX JSON text. */
  readonly sbom?: string;
  readonly securityRelease?: boolean;
}

export interface ArtifactsDependencies {
  readonly store: Store;
  readonly blobs: ArtifactStore;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly thingTypes: Pick<ThingTypes, 'get'>;
  readonly maxBytes: number;
  /** The target paths the targets metadata in force lists. */
  readonly signedTargets: () => Promise<ReadonlySet<string>>;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MAX_SECURITY_VERSION = 2_147_483_647;
const MAX_NOTES = 8_192;
const MAX_HARDWARE = 32;

/**
 * Firmware artifacts (rule 4): bytes stored content-addressed, described by a semantic version and
 * a security version (the anti-rollback counter), the thing types they are for, release notes and
 * an SBOM. Security versions never go down as versions go up: an upload that would let a newer
 * version carry a lower counter (or an older one a higher) is refused.
 */
export class Artifacts {
  readonly #deps: ArtifactsDependencies;

  constructor(deps: ArtifactsDependencies) {
    this.#deps = deps;
  }

  /** Stores the bytes and records the artifact; on any refusal nothing is kept. */
  async add(source: Readable, request: ArtifactRequest, actor: Actor): Promise<FirmwareArtifact> {
    const checked = await this.#check(request);
    const blob = await this.#deps.blobs.put(source, this.#deps.maxBytes);
    const target = `${checked.name}-${checked.version}`;
    const row: FirmwareArtifactsTable = {
      target,
      name: checked.name,
      version: checked.version,
      security_version: checked.securityVersion,
      sha256: blob.sha256,
      size: blob.size,
      hardware: JSON.stringify(checked.hardware),
      release_notes: checked.releaseNotes ?? null,
      sbom: checked.sbom ?? null,
      security_release: checked.securityRelease === true ? 1 : 0,
      created_at: this.#deps.clock.now().toISOString(),
      created_by: actor.name,
    };
    try {
      await this.#deps.store.db.transaction().execute(async (trx) => {
        const siblings = await trx.selectFrom('firmware_artifacts').select(['version', 'security_version', 'sha256']).where('name', '=', checked.name).execute();
        const same = siblings.find((s) => s.version === checked.version);
        if (same !== undefined) throw new FleetwardError('FW_ERR_CONFLICT', `${checked.name} ${checked.version} is already uploaded; a version is immutable (upload a new version)`, { target });
        for (const sibling of siblings) checkMonotonic(checked, sibling);
        await trx.insertInto('firmware_artifacts').values(row).execute();
        await this.#deps.audit.recordWithin(trx, [
          { ...actorFields(actor), action: 'firmware.add', outcome: 'success', target: `firmware:${target}`, details: { sha256: blob.sha256, size: blob.size, securityVersion: checked.securityVersion, hardware: checked.hardware, securityRelease: row.security_release === 1 } },
        ]);
      });
    } catch (error) {
      // The same bytes may belong to another artifact: removed only when no row names them.
      if (!(await this.#referenced(blob.sha256))) await this.#deps.blobs.remove(blob.sha256);
      throw error;
    }
    return artifactOf(row, false);
  }

  async list(): Promise<FirmwareArtifact[]> {
    const [rows, signed] = await Promise.all([this.#deps.store.db.selectFrom('firmware_artifacts').selectAll().orderBy('name').orderBy('created_at').execute(), this.#deps.signedTargets()]);
    return rows.map((r) => artifactOf(r, signed.has(r.target)));
  }

  async get(target: string): Promise<FirmwareArtifact | null> {
    const row = await this.#deps.store.db.selectFrom('firmware_artifacts').selectAll().where('target', '=', target).executeTakeFirst();
    return row === undefined ? null : artifactOf(row, (await this.#deps.signedTargets()).has(target));
  }

  /** The artifact's SBOM (CycloneDX JSON), for rule 10's matching. */
  async sbom(target: string): Promise<unknown> {
    const row = await this.#deps.store.db.selectFrom('firmware_artifacts').select('sbom').where('target', '=', target).executeTakeFirst();
    if (row === undefined) throw new FleetwardError('FW_ERR_NOT_FOUND', `no artifact ${target}`, { target });
    if (row.sbom === null) throw new FleetwardError('FW_ERR_NOT_FOUND', `artifact ${target} has no SBOM`, { target });
    return JSON.parse(row.sbom) as unknown;
  }

  async #check(request: ArtifactRequest): Promise<ArtifactRequest> {
    if (!NAME.test(request.name)) throw new FleetwardError('FW_ERR_VALIDATION', 'an artifact name is 1 to 64 lowercase letters, digits, dots, dashes and underscores', { field: 'name' });
    const version = semver.valid(request.version);
    if (version === null || version !== request.version) throw new FleetwardError('FW_ERR_VALIDATION', `version ${JSON.stringify(request.version)} is not a semantic version (like 1.4.2)`, { field: 'version' });
    if (!Number.isInteger(request.securityVersion) || request.securityVersion < 0 || request.securityVersion > MAX_SECURITY_VERSION) {
      throw new FleetwardError('FW_ERR_VALIDATION', `the security version is an integer from 0 to ${MAX_SECURITY_VERSION}`, { field: 'securityVersion' });
    }
    const hardware = [...new Set(request.hardware)].sort();
    if (hardware.length === 0 || hardware.length > MAX_HARDWARE) throw new FleetwardError('FW_ERR_VALIDATION', `name 1 to ${MAX_HARDWARE} compatible thing types (--hardware)`, { field: 'hardware' });
    for (const type of hardware) await this.#deps.thingTypes.get(type);
    if (request.releaseNotes !== undefined && request.releaseNotes.length > MAX_NOTES) throw new FleetwardError('FW_ERR_VALIDATION', `release notes are at most ${MAX_NOTES} characters`, { field: 'releaseNotes' });
    if (request.sbom !== undefined) parseCycloneDx(request.sbom);
    return { ...request, hardware };
  }

  async #referenced(sha256: string): Promise<boolean> {
    return (await this.#deps.store.db.selectFrom('firmware_artifacts').select('target').where('sha256', '=', sha256).executeTakeFirst()) !== undefined;
  }
}

/** Newer versions never carry a lower security version than older ones of the same product. */
function checkMonotonic(request: ArtifactRequest, other: { version: string; security_version: number }): void {
  const newer = semver.gt(request.version, other.version);
  if ((newer && request.securityVersion < other.security_version) || (!newer && request.securityVersion > other.security_version)) {
    throw new FleetwardError(
      'FW_ERR_ROLLBACK_REFUSED',
      `${request.name} ${request.version} with security version ${request.securityVersion} would break the order of security versions: ${other.version} has ${other.security_version}`,
      { field: 'securityVersion' },
    );
  }
}

export function artifactOf(row: FirmwareArtifactsTable, signed: boolean): FirmwareArtifact {
  return {
    target: row.target,
    name: row.name,
    version: row.version,
    securityVersion: row.security_version,
    sha256: row.sha256,
    size: Number(row.size),
    hardware: JSON.parse(row.hardware) as string[],
    releaseNotes: row.release_notes,
    securityRelease: row.security_release === 1,
    hasSbom: row.sbom !== null,
    signed,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}
