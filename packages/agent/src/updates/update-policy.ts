import semver from 'semver';
import type { JobReason } from '@fleetward/protocol';

/** What the signed targets metadata says about one artifact (its `custom` fields), parsed. */
export interface SignedRelease {
  readonly target: string;
  readonly version: string;
  readonly securityVersion: number;
  readonly hardware: readonly string[];
  readonly securityRelease: boolean;
  /** Hex SHA-256 and length, from the signed target entry. */
  readonly sha256: string;
  readonly length: number;
}

/** The firmware a device runs and the anti-rollback floor it keeps. */
export interface RunningFirmware {
  readonly version: string;
  readonly securityVersion: number;
  /** Hex SHA-256 of the running image, or null for a factory image the agent cannot hash. */
  readonly sha256: string | null;
}

export type PolicyDecision =
  | { readonly decision: 'install' }
  /** The same version and bytes already run: nothing to do, the job succeeded. */
  | { readonly decision: 'up-to-date' }
  | { readonly decision: 'rejected'; readonly reason: Extract<JobReason, 'incompatible' | 'rollback' | 'too-large'>; readonly message: string };

export interface DevicePolicy {
  readonly hardware: string;
  /** The highest security version this device has ever run. */
  readonly floor: number;
  readonly maxArtifactBytes: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Reads a target's signed fields. Only the TUF targets metadata is trusted for these (never the
 * job message): a target without them, or with malformed ones, is refused as incompatible.
 */
export function signedRelease(target: string, custom: Readonly<Record<string, unknown>>, hashes: Readonly<Record<string, string>>, length: number): SignedRelease | string {
  const { version, securityVersion, hardware, securityRelease } = custom;
  if (typeof version !== 'string' || semver.valid(version) === null) return 'the signed target has no semantic version';
  if (typeof securityVersion !== 'number' || !Number.isSafeInteger(securityVersion) || securityVersion < 0) return 'the signed target has no security version';
  if (!Array.isArray(hardware) || hardware.length === 0 || !hardware.every((h) => typeof h === 'string')) return 'the signed target names no hardware';
  // No MD5 or SHA-1 anywhere in the device contract: SHA-256 or nothing.
  const sha256 = hashes.sha256;
  if (sha256 === undefined || !SHA256_HEX.test(sha256)) return 'the signed target has no SHA-256 hash';
  return { target, version, securityVersion, hardware, securityRelease: securityRelease === true, sha256, length };
}

/**
 * Whether this device may install a signed release. Order matters: hardware first (an artifact for
 * another board is never installed whatever its version), then the security-version floor (the
 * anti-rollback counter, which also refuses "the same version re-signed with a lower security
 * version"), then the semantic version. A running version that is not semver is compared by the
 * security version only.
 */
export function decideInstall(release: SignedRelease, running: RunningFirmware, device: DevicePolicy): PolicyDecision {
  if (!release.hardware.includes(device.hardware)) return { decision: 'rejected', reason: 'incompatible', message: `built for ${release.hardware.join(', ')}, not ${device.hardware}` };
  if (release.length > device.maxArtifactBytes) return { decision: 'rejected', reason: 'too-large', message: `${release.length} bytes is more than the device accepts (${device.maxArtifactBytes})` };
  if (release.securityVersion < device.floor) return { decision: 'rejected', reason: 'rollback', message: `security version ${release.securityVersion} is below ${device.floor}, the highest this device has run` };
  const current = semver.valid(running.version);
  if (current !== null && semver.lt(release.version, current)) return { decision: 'rejected', reason: 'rollback', message: `version ${release.version} is older than the running ${running.version}` };
  if (current !== null && semver.eq(release.version, current) && running.sha256 === release.sha256) return { decision: 'up-to-date' };
  return { decision: 'install' };
}
