import type { X509Certificate } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import { identify, type ThingIdentity } from '../gateway/device-identity.js';
import { VerifiedCertificate } from '../identity/verified-certificate.js';
import type { Groups } from '../identity/registry/groups.js';
import type { ThirdPartyCas } from '../identity/third-party-cas.js';
import type { Store } from '../store/store.js';
import type { SignedTarget, TufRepository } from './tuf/tuf-repository.js';

/** A byte range of a file, inclusive, as HTTP Range asks for it. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface UpdateDownloadsDependencies {
  readonly store: Store;
  readonly groups: Groups;
  readonly thirdPartyCas: ThirdPartyCas;
  readonly audit: AuditLog;
  readonly repository: Pick<TufRepository, 'signedTargets'>;
}

/**
 * Who may download updates (rule 4 over rule 3's channel): a device whose certificate Fleetward
 * issued, still active, of a thing that may connect; artifacts only of the thing's own type. Each
 * refusal is audited: a device probing for another type's firmware is worth knowing about.
 */
export class UpdateDownloads {
  readonly #deps: UpdateDownloadsDependencies;

  constructor(deps: UpdateDownloadsDependencies) {
    this.#deps = deps;
  }

  /** The device a verified client certificate belongs to, if it may download updates. */
  async device(certificate: X509Certificate | null, source: string): Promise<ThingIdentity> {
    if (certificate === null) throw new FleetwardError('FW_ERR_UNAUTHENTICATED', 'updates are served to devices only: present the device certificate (mutual TLS)');
    const identity = await identify(this.#deps, VerifiedCertificate.fromX509(certificate), source).catch(() => null);
    if (identity === null || identity.kind !== 'device') return this.#refuse(null, 'not a device certificate', source, 'FW_ERR_UNAUTHENTICATED');
    if (identity.certificateStatus !== 'active') return this.#refuse(identity, 'certificate revoked', source, 'FW_ERR_CERT_REVOKED');
    if (identity.thingState !== 'active' && identity.thingState !== 'quarantined') return this.#refuse(identity, `thing is ${identity.thingState}`, source, 'FW_ERR_THING_STATE');
    return identity;
  }

  /**
   * The signed target a device asks for as `<sha256>.<target>` (consistent snapshots): it must be
   * listed by the targets metadata in force with that hash and built for the device's type.
   */
  async target(device: ThingIdentity, file: string, source: string): Promise<SignedTarget> {
    const match = /^([0-9a-f]{64})\.([A-Za-z0-9._-]{1,255})$/.exec(file);
    const target = match === null ? undefined : (await this.#deps.repository.signedTargets()).get(match[2] as string);
    if (match === null || target === undefined || target.sha256 !== match[1]) throw new FleetwardError('FW_ERR_NOT_FOUND', `no signed target ${file}`);
    if (device.thingType === null || !target.hardware.includes(device.thingType)) {
      return this.#refuse(device, `artifact ${target.path} is for ${target.hardware.join(', ')}, not ${device.thingType ?? 'an untyped thing'}`, source, 'FW_ERR_INCOMPATIBLE_HARDWARE');
    }
    return target;
  }

  async #refuse(identity: ThingIdentity | null, reason: string, source: string, code: 'FW_ERR_UNAUTHENTICATED' | 'FW_ERR_CERT_REVOKED' | 'FW_ERR_THING_STATE' | 'FW_ERR_INCOMPATIBLE_HARDWARE'): Promise<never> {
    await this.#deps.audit.record({ actor: identity === null ? 'anonymous' : `thing:${identity.thing}`, action: 'firmware.download.refused', outcome: 'denied', source, details: { reason, code } });
    throw new FleetwardError(code, code === 'FW_ERR_INCOMPATIBLE_HARDWARE' ? reason : `updates refused: ${reason}`);
  }
}

/**
 * The one range a `Range` header asks for within `size` bytes; null: the whole file (no header,
 * or one this server does not serve partially, like several ranges); 'unsatisfiable': 416.
 */
export function requestedRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const match = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (match === null) return null;
  const [first, last] = [match[1] as string, match[2] as string];
  if (first === '' && last === '') return null;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}
