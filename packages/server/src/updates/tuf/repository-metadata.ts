import { createHash } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { Metadata, MetadataKind, MetaFile, Root, Snapshot, Targets, TargetFile, Timestamp } from '@tufjs/models';
import type { FirmwareArtifact } from '../types.js';
import { keyIdOf, type TufPublicKey } from './keys.js';

type JSONObject = Parameters<typeof Root.fromJSON>[0];

/**
 * The TUF repository's metadata, built and checked as pure functions of the metadata in force,
 * the artifacts and the time (TUF specification 1.0; Uptane-style roles: root and targets offline,
 * snapshot and timestamp online).
 */

export const SPEC_VERSION = '1.0.31';

/** What a target's `custom` field says, signed with it: what the device enforces. */
export interface TargetCustom {
  readonly version: string;
  readonly securityVersion: number;
  readonly hardware: readonly string[];
  readonly securityRelease: boolean;
}

export interface RootProposal {
  readonly rootKeys: readonly TufPublicKey[];
  readonly rootThreshold: number;
  readonly targetsKeys: readonly TufPublicKey[];
  readonly targetsThreshold: number;
  readonly snapshotKey: TufPublicKey;
  readonly timestampKey: TufPublicKey;
  readonly expires: Date;
}

/** TUF's time format without fractional seconds: some clients (the Python reference) refuse them. */
export function tufExpires(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** The next root (version 1 when there is none), unsigned: the root keys sign it offline. */
export function proposeRoot(current: Metadata<Root> | null, proposal: RootProposal): Metadata<Root> {
  checkThreshold('root', proposal.rootThreshold, new Set(proposal.rootKeys.map(keyIdOf)).size);
  checkThreshold('targets', proposal.targetsThreshold, new Set(proposal.targetsKeys.map(keyIdOf)).size);
  const keys: Record<string, TufPublicKey> = {};
  const role = (members: readonly TufPublicKey[], threshold: number) => {
    for (const key of members) keys[keyIdOf(key)] = key;
    return { keyids: [...new Set(members.map(keyIdOf))].sort(), threshold };
  };
  const roles = {
    root: role(proposal.rootKeys, proposal.rootThreshold),
    targets: role(proposal.targetsKeys, proposal.targetsThreshold),
    snapshot: role([proposal.snapshotKey], 1),
    timestamp: role([proposal.timestampKey], 1),
  };
  const signed = { _type: 'root', spec_version: SPEC_VERSION, version: (current?.signed.version ?? 0) + 1, expires: tufExpires(proposal.expires), consistent_snapshot: true, keys, roles };
  return new Metadata(Root.fromJSON(signed as unknown as JSONObject));
}

/**
 * Checks a signed root before it replaces the one in force: the next version, signed by a threshold
 * of the current root's keys (a rotation must be approved by the old keys) and of its own, and not expired.
 */
export function verifyRoot(current: Metadata<Root> | null, json: unknown, now: Date): Metadata<Root> {
  const candidate = parse(MetadataKind.Root, json);
  const expected = (current?.signed.version ?? 0) + 1;
  if (candidate.signed.version !== expected) {
    throw new FleetwardError(candidate.signed.version < expected ? 'FW_ERR_ROLLBACK_REFUSED' : 'FW_ERR_VALIDATION', `root version ${candidate.signed.version} cannot follow version ${expected - 1}: the next root is version ${expected}`);
  }
  if (!candidate.signed.consistentSnapshot) throw new FleetwardError('FW_ERR_VALIDATION', 'the root must set consistent_snapshot: true');
  for (const role of [MetadataKind.Root, MetadataKind.Targets, MetadataKind.Snapshot, MetadataKind.Timestamp]) {
    if (candidate.signed.roles[role] === undefined) throw new FleetwardError('FW_ERR_VALIDATION', `the root names no keys for the ${role} role`);
  }
  if (current !== null) verifySignatures(current, MetadataKind.Root, candidate, 'the current root keys');
  verifySignatures(candidate, MetadataKind.Root, candidate, 'its own root keys');
  if (candidate.signed.isExpired(now)) throw new FleetwardError('FW_ERR_VALIDATION', `the root expired at ${candidate.signed.expires}`);
  return candidate;
}

/** The next targets metadata, listing every given artifact, unsigned: the targets keys sign it offline. */
export function proposeTargets(current: Metadata<Targets> | null, artifacts: readonly FirmwareArtifact[], expires: Date): Metadata<Targets> {
  const targets = new ListedTargets({ version: (current?.signed.version ?? 0) + 1, specVersion: SPEC_VERSION, expires: tufExpires(expires) });
  for (const artifact of artifacts) targets.addTarget(targetFileOf(artifact));
  return new Metadata(targets);
}

export function targetFileOf(artifact: FirmwareArtifact): TargetFile {
  const custom: TargetCustom = { version: artifact.version, securityVersion: artifact.securityVersion, hardware: [...artifact.hardware], securityRelease: artifact.securityRelease };
  return new TargetFile({ path: artifact.target, length: artifact.size, hashes: { sha256: artifact.sha256 }, unrecognizedFields: { custom: custom as unknown as JSONObject } });
}

/**
 * Checks signed targets metadata before it is published: a threshold of the root's targets keys,
 * a newer version, not expired, and each target exactly an uploaded artifact (bytes, length, custom
 * fields): a target re-signed with a lower security version than before is a rollback.
 */
export function verifyTargets(root: Metadata<Root>, current: Metadata<Targets> | null, json: unknown, artifacts: ReadonlyMap<string, FirmwareArtifact>, now: Date): Metadata<Targets> {
  const candidate = parse(MetadataKind.Targets, json);
  verifySignatures(root, MetadataKind.Targets, candidate, "the root's targets keys");
  const currentVersion = current?.signed.version ?? 0;
  if (candidate.signed.version <= currentVersion) throw new FleetwardError('FW_ERR_ROLLBACK_REFUSED', `targets version ${candidate.signed.version} is not newer than version ${currentVersion} in force`);
  if (candidate.signed.isExpired(now)) throw new FleetwardError('FW_ERR_VALIDATION', `the targets metadata expired at ${candidate.signed.expires}`);
  if (candidate.signed.delegations !== undefined) throw new FleetwardError('FW_ERR_VALIDATION', 'delegated targets roles are not supported');
  for (const [path, file] of Object.entries(candidate.signed.targets)) {
    const before = current?.signed.targets[path];
    const signed = customOf(file);
    if (before !== undefined && signed !== null && (customOf(before)?.securityVersion ?? 0) > signed.securityVersion) {
      throw new FleetwardError('FW_ERR_ROLLBACK_REFUSED', `target ${path} was signed with security version ${customOf(before)?.securityVersion}; it cannot be re-signed with ${signed.securityVersion}`, { target: path });
    }
    const artifact = artifacts.get(path);
    if (artifact === undefined) throw new FleetwardError('FW_ERR_VALIDATION', `target ${path} is not an uploaded artifact`, { target: path });
    if (!file.equals(targetFileOf(artifact))) {
      throw new FleetwardError('FW_ERR_SIGNATURE_INVALID', `target ${path} does not describe the uploaded artifact (length, hash or custom fields differ)`, { target: path });
    }
  }
  return candidate;
}

/** Snapshot and timestamp for the targets in force, signed online. */
export function nextSnapshot(currentVersion: number, targetsVersion: number, expires: Date): Metadata<Snapshot> {
  return new Metadata(new Snapshot({ version: currentVersion + 1, specVersion: SPEC_VERSION, expires: tufExpires(expires), meta: { 'targets.json': new MetaFile({ version: targetsVersion }) } }));
}

export function nextTimestamp(currentVersion: number, snapshot: { version: number; bytes: Buffer }, expires: Date): Metadata<Timestamp> {
  const snapshotMeta = new MetaFile({ version: snapshot.version, length: snapshot.bytes.length, hashes: { sha256: createHash('sha256').update(snapshot.bytes).digest('hex') } });
  return new Metadata(new Timestamp({ version: currentVersion + 1, specVersion: SPEC_VERSION, expires: tufExpires(expires), snapshotMeta }));
}

export function customOf(file: TargetFile): TargetCustom | null {
  const custom = file.custom as Partial<TargetCustom>;
  if (typeof custom.version !== 'string' || !Number.isInteger(custom.securityVersion) || !Array.isArray(custom.hardware)) return null;
  return custom as TargetCustom;
}

/**
 * Targets metadata whose JSON form is built in one pass. @tufjs/models 4.1 builds (and parses) the
 * `targets` map with `reduce((acc, …) => ({ ...acc, [path]: … }))`, which copies the whole map at
 * every entry: O(n²), about a minute for 10,000 targets each time metadata is proposed, verified
 * (every key's signature check serializes it again) or stored. Same fields in the same order as
 * `Targets.toJSON`, so the same canonical bytes are signed and verified.
 */
export class ListedTargets extends Targets {
  override toJSON(): JSONObject {
    // Object.fromEntries defines own properties, like the object spread it replaces (a path "__proto__" stays a path).
    const targets = Object.fromEntries(Object.entries(this.targets).map(([path, file]) => [path, file.toJSON()]));
    const json: JSONObject = { _type: this.type, spec_version: this.specVersion, version: this.version, expires: this.expires, targets, ...this.unrecognizedFields };
    if (this.delegations) json.delegations = this.delegations.toJSON();
    return json;
  }
}

/**
 * `Metadata.fromJSON` for targets in linear time (see ListedTargets): the models parse and check
 * everything but the `targets` map, which is then read entry by entry with `TargetFile.fromJSON`
 * (the same per-target checks) after the same shape check the models make.
 */
function parseTargets(json: { signed: Record<string, unknown> }): Metadata<Targets> {
  const { signed, ...document } = json;
  const { targets, ...rest } = signed;
  const shell = Metadata.fromJSON(MetadataKind.Targets, { ...document, signed: rest } as unknown as JSONObject);
  if (targets !== undefined && (typeof targets !== 'object' || targets === null || !Object.values(targets).every((t) => typeof t === 'object' && t !== null))) {
    throw new TypeError('targets must be an object');
  }
  const files = Object.fromEntries(Object.entries((targets ?? {}) as Record<string, JSONObject>).map(([path, file]) => [path, TargetFile.fromJSON(path, file)]));
  const { version, specVersion, expires, delegations, unrecognizedFields } = shell.signed;
  return new Metadata(new ListedTargets({ version, specVersion, expires, unrecognizedFields, targets: files, ...(delegations !== undefined && { delegations }) }), shell.signatures, shell.unrecognizedFields);
}

/** Parses metadata of a role; anything malformed is FW_ERR_VALIDATION. */
export function parse<K extends MetadataKind>(kind: K, json: unknown): Metadata<KindOf<K>> {
  const object = json as { signed?: { _type?: unknown } } | null;
  if (typeof object !== 'object' || object === null || object.signed?._type !== kind) throw new FleetwardError('FW_ERR_VALIDATION', `this is not TUF ${kind} metadata`);
  try {
    if (kind === MetadataKind.Targets) return parseTargets(json as { signed: Record<string, unknown> }) as unknown as Metadata<KindOf<K>>;
    return Metadata.fromJSON(kind as never, json as JSONObject) as unknown as Metadata<KindOf<K>>;
  } catch (error) {
    throw new FleetwardError('FW_ERR_VALIDATION', `the ${kind} metadata is malformed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

type KindOf<K extends MetadataKind> = K extends MetadataKind.Root ? Root : K extends MetadataKind.Targets ? Targets : K extends MetadataKind.Snapshot ? Snapshot : Timestamp;

function verifySignatures(delegator: Metadata<Root>, role: MetadataKind, metadata: Metadata<Root | Targets>, whose: string): void {
  try {
    delegator.verifyDelegate(role, metadata);
  } catch {
    const threshold = delegator.signed.roles[role]?.threshold ?? 1;
    throw new FleetwardError('FW_ERR_SIGNATURE_INVALID', `the ${metadata.signed.type} metadata is not signed by a threshold (${threshold}) of ${whose}`, { role, threshold });
  }
}

function checkThreshold(role: string, threshold: number, keys: number): void {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys) {
    throw new FleetwardError('FW_ERR_VALIDATION', `the ${role} threshold must be from 1 to the number of ${role} keys (${keys})`, { role });
  }
}
