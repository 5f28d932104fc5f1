import { FleetwardError } from '@fleetward/protocol';
import { MetadataKind, type Metadata, type Root, type Targets } from '@tufjs/models';
import type { Kysely } from 'kysely';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { KeyRing } from '../../identity/key-ring.js';
import { lockForTransaction } from '../../store/locks.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import type { FirmwareArtifact } from '../types.js';
import { addSignatures, generateTufKey, parseTufPublicKey, privateKeySigner, type TufSigner } from './keys.js';
import { customOf, nextSnapshot, nextTimestamp, parse, proposeRoot, proposeTargets, verifyRoot, verifyTargets, type TargetCustom } from './repository-metadata.js';

export interface TufExpiry {
  readonly timestampHours: number;
  readonly snapshotDays: number;
}

export interface RootKeysRequest {
  readonly rootKeys: readonly unknown[];
  readonly rootThreshold: number;
  readonly targetsKeys: readonly unknown[];
  readonly targetsThreshold: number;
  readonly expiresDays: number;
}

/** A signed target the devices may install: its path, hash, length and the signed custom fields. */
export interface SignedTarget extends TargetCustom {
  readonly path: string;
  readonly sha256: string;
  readonly length: number;
}

/** Metadata as JSON: what is proposed, signed offline and imported. */
export interface TufDocument {
  readonly signed: unknown;
  readonly signatures: readonly unknown[];
}

export interface RepositoryStatus {
  readonly root: { readonly version: number; readonly expires: string; readonly rootThreshold: number; readonly rootKeys: readonly string[]; readonly targetsThreshold: number; readonly targetsKeys: readonly string[] } | null;
  readonly targets: { readonly version: number; readonly expires: string; readonly count: number } | null;
  readonly snapshot: { readonly version: number; readonly expires: string } | null;
  readonly timestamp: { readonly version: number; readonly expires: string } | null;
}

export interface TufRepositoryDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly keyRing: KeyRing;
  readonly expiry: TufExpiry;
  /** Every uploaded artifact (what targets metadata may list). */
  readonly artifacts: () => Promise<readonly FirmwareArtifact[]>;
}

const ONLINE_ROLES = ['snapshot', 'timestamp'] as const;
type OnlineRole = (typeof ONLINE_ROLES)[number];
const MAX_EXPIRES_DAYS = 3650;

/**
 * The fleet's TUF repository (rule 4). Root and targets metadata are signed offline (key files on
 * an air-gapped machine or a PKCS#11 token) and only imported here after their thresholds verify;
 * snapshot and timestamp are signed online with keys sealed by the key-encryption key and re-signed
 * before they expire, so a device that stops hearing from the repository notices (freeze attack).
 * Every version is kept and served as `N.<role>.json` (consistent snapshots).
 */
export class TufRepository {
  readonly #deps: TufRepositoryDependencies;
  /** Signed metadata never changes once stored: bodies are kept by `role/version`. */
  readonly #bodies = new Map<string, Buffer>();
  #signed: { version: number; targets: ReadonlyMap<string, SignedTarget> } | null = null;

  constructor(deps: TufRepositoryDependencies) {
    this.#deps = deps;
  }

  async status(): Promise<RepositoryStatus> {
    const [root, targets, snapshot, timestamp] = await Promise.all([this.#latest(MetadataKind.Root), this.#latest(MetadataKind.Targets), this.#latest(MetadataKind.Snapshot), this.#latest(MetadataKind.Timestamp)]);
    const rootMeta = root === null ? null : parse(MetadataKind.Root, root.json);
    const roleOf = (name: string) => rootMeta?.signed.roles[name];
    return {
      root:
        rootMeta === null
          ? null
          : {
              version: rootMeta.signed.version,
              expires: rootMeta.signed.expires,
              rootThreshold: roleOf('root')?.threshold ?? 0,
              rootKeys: roleOf('root')?.keyIDs ?? [],
              targetsThreshold: roleOf('targets')?.threshold ?? 0,
              targetsKeys: roleOf('targets')?.keyIDs ?? [],
            },
      targets: targets === null ? null : { version: targets.version, expires: targets.expires, count: Object.keys((targets.json as { signed: { targets: object } }).signed.targets).length },
      snapshot: snapshot === null ? null : { version: snapshot.version, expires: snapshot.expires },
      timestamp: timestamp === null ? null : { version: timestamp.version, expires: timestamp.expires },
    };
  }

  /** The next root, unsigned, with the given offline keys and this repository's online keys. */
  async proposeRoot(request: RootKeysRequest): Promise<TufDocument> {
    checkDays(request.expiresDays);
    const online = await this.#onlineKeys();
    const current = await this.#root();
    const proposal = proposeRoot(current, {
      rootKeys: request.rootKeys.map((k, i) => parseTufPublicKey(k, `root key ${i + 1}`)),
      rootThreshold: request.rootThreshold,
      targetsKeys: request.targetsKeys.map((k, i) => parseTufPublicKey(k, `targets key ${i + 1}`)),
      targetsThreshold: request.targetsThreshold,
      snapshotKey: online.snapshot.publicKey,
      timestampKey: online.timestamp.publicKey,
      expires: this.#daysFromNow(request.expiresDays),
    });
    return proposal.toJSON() as unknown as TufDocument;
  }

  /** Accepts a signed root (the first, or a rotation approved by the current root's keys). */
  async importRoot(json: unknown, actor: Actor): Promise<RepositoryStatus> {
    const online = await this.#onlineKeys();
    await this.#refusedOnError(actor, 'root', async () => {
      const candidate = verifyRoot(await this.#root(), json, this.#deps.clock.now());
      for (const role of ONLINE_ROLES) {
        const keyids = candidate.signed.roles[role]?.keyIDs ?? [];
        if (keyids.length !== 1 || keyids[0] !== online[role].keyid) throw new FleetwardError('FW_ERR_VALIDATION', `the ${role} role must be this repository's online key ${online[role].keyid} (propose the root here)`);
      }
      await this.#deps.store.db.transaction().execute(async (trx) => {
        await lockForTransaction(trx, this.#deps.store.dialect, 'tuf');
        await this.#insert(trx, candidate);
        await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'firmware.root.import', outcome: 'success', target: `tuf:root:${candidate.signed.version}`, details: { version: candidate.signed.version, expires: candidate.signed.expires } }]);
      });
    });
    return this.status();
  }

  /** The next targets metadata, unsigned, listing every uploaded artifact. */
  async proposeTargets(expiresDays: number): Promise<TufDocument> {
    checkDays(expiresDays);
    await this.#requireRoot();
    return proposeTargets(await this.#targets(), await this.#deps.artifacts(), this.#daysFromNow(expiresDays)).toJSON() as unknown as TufDocument;
  }

  /** Publishes signed targets metadata: verified against the root's targets keys and the artifacts, then snapshot and timestamp follow. */
  async importTargets(json: unknown, actor: Actor): Promise<RepositoryStatus> {
    await this.#refusedOnError(actor, 'targets', async () => {
      const root = await this.#requireRoot();
      const artifacts = new Map((await this.#deps.artifacts()).map((a) => [a.target, a]));
      const candidate = verifyTargets(root, await this.#targets(), json, artifacts, this.#deps.clock.now());
      const online = await this.#onlineKeys();
      await this.#deps.store.db.transaction().execute(async (trx) => {
        await lockForTransaction(trx, this.#deps.store.dialect, 'tuf');
        await this.#insert(trx, candidate);
        await this.#publishOnline(trx, online, candidate.signed.version);
        await this.#deps.audit.recordWithin(trx, [
          { ...actorFields(actor), action: 'firmware.targets.import', outcome: 'success', target: `tuf:targets:${candidate.signed.version}`, details: { version: candidate.signed.version, targets: Object.keys(candidate.signed.targets).slice(0, 100) } },
        ]);
      });
    });
    return this.status();
  }

  /**
   * Re-signs snapshot and timestamp when half their lifetime is gone (a scheduled job on every
   * node; the lock makes one of them do it). Returns whether anything was signed.
   */
  async refreshOnline(): Promise<boolean> {
    const targets = await this.#latest(MetadataKind.Targets);
    if (targets === null) return false;
    const [snapshot, timestamp] = await Promise.all([this.#latest(MetadataKind.Snapshot), this.#latest(MetadataKind.Timestamp)]);
    const now = this.#deps.clock.now().getTime();
    const halfGone = (row: { expires: string; created: string } | null) => row === null || now >= (Date.parse(row.expires) + Date.parse(row.created)) / 2;
    if (!halfGone(snapshot) && !halfGone(timestamp)) return false;
    const online = await this.#onlineKeys();
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, this.#deps.store.dialect, 'tuf');
      // Another node may have refreshed meanwhile: looked at again under the lock.
      const again = await latestRow(trx, MetadataKind.Timestamp);
      if (again !== null && timestamp !== null && again.version !== timestamp.version) return;
      await this.#publishOnline(trx, online, targets.version, !halfGone(snapshot));
    });
    return true;
  }

  /** The body of a metadata file as devices ask for it (`N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.targets.json`); null: there is none. */
  async metadataFile(name: string): Promise<Buffer | null> {
    if (name === 'timestamp.json') return (await this.#latest(MetadataKind.Timestamp))?.body ?? null;
    const match = /^([1-9][0-9]{0,9})\.(root|snapshot|targets)\.json$/.exec(name);
    if (match === null) return null;
    const [role, version] = [match[2] as string, Number(match[1])];
    const key = `${role}/${version}`;
    const cached = this.#bodies.get(key);
    if (cached !== undefined) return cached;
    const row = await this.#deps.store.db.selectFrom('tuf_metadata').select('body').where('role', '=', role).where('version', '=', version).executeTakeFirst();
    if (row === undefined) return null;
    const body = Buffer.from(row.body);
    if (this.#bodies.size < 1_000) this.#bodies.set(key, body);
    return body;
  }

  /** The targets the metadata in force lists, by path. */
  async signedTargets(): Promise<ReadonlyMap<string, SignedTarget>> {
    const version = await this.#latestVersion(MetadataKind.Targets);
    if (version === null) return new Map();
    if (this.#signed?.version === version) return this.#signed.targets;
    const targets = (await this.#targets()) as Metadata<Targets>;
    const map = new Map<string, SignedTarget>();
    for (const [path, file] of Object.entries(targets.signed.targets)) {
      const custom = customOf(file);
      if (custom !== null && file.hashes.sha256 !== undefined) map.set(path, { ...custom, path, sha256: file.hashes.sha256, length: file.length });
    }
    this.#signed = { version, targets: map };
    return map;
  }

  /** Re-seals the online keys with the active key-encryption key (part of a KEK rotation); returns how many. */
  static async reseal(db: Kysely<Tables>, sealer: Pick<KeyRing, 'reseal'>): Promise<number> {
    const rows = await db.selectFrom('tuf_online_keys').select(['role', 'sealed_private_key']).execute();
    for (const row of rows) {
      await db.updateTable('tuf_online_keys').set({ sealed_private_key: sealer.reseal(row.sealed_private_key, `tuf:${row.role}`) }).where('role', '=', row.role).execute();
    }
    return rows.length;
  }

  /** Called inside the transaction, so the online keys are opened before it. */
  async #publishOnline(trx: Kysely<Tables>, online: Record<OnlineRole, TufSigner>, targetsVersion: number, keepSnapshot = false): Promise<void> {
    const now = this.#deps.clock.now().getTime();
    const latestSnapshot = await latestRow(trx, MetadataKind.Snapshot);
    let snapshot: { version: number; bytes: Buffer };
    if (keepSnapshot && latestSnapshot !== null) {
      snapshot = { version: latestSnapshot.version, bytes: Buffer.from(latestSnapshot.body) };
    } else {
      const next = nextSnapshot(latestSnapshot?.version ?? 0, targetsVersion, new Date(now + this.#deps.expiry.snapshotDays * 86_400_000));
      snapshot = { version: next.signed.version, bytes: await this.#insert(trx, await signOnline(next, online.snapshot)) };
    }
    const latestTimestamp = await latestRow(trx, MetadataKind.Timestamp);
    const timestamp = nextTimestamp(latestTimestamp?.version ?? 0, snapshot, new Date(now + this.#deps.expiry.timestampHours * 3_600_000));
    await this.#insert(trx, await signOnline(timestamp, online.timestamp));
  }

  /** Stores signed metadata; returns the bytes served. */
  async #insert(trx: Kysely<Tables>, metadata: { signed: { type: string; version: number; expires: string }; toJSON(): unknown }): Promise<Buffer> {
    const body = JSON.stringify(metadata.toJSON());
    await trx
      .insertInto('tuf_metadata')
      .values({ role: metadata.signed.type, version: metadata.signed.version, body, expires_at: metadata.signed.expires, created_at: this.#deps.clock.now().toISOString() })
      .execute();
    return Buffer.from(body);
  }

  async #refusedOnError(actor: Actor, role: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (error instanceof FleetwardError) {
        await this.#deps.audit.record({ ...actorFields(actor), action: 'firmware.metadata.refused', outcome: 'denied', target: `tuf:${role}`, details: { code: error.code, reason: error.message } });
      }
      throw error;
    }
  }

  async #onlineKeys(): Promise<Record<OnlineRole, TufSigner>> {
    const keys: Partial<Record<OnlineRole, TufSigner>> = {};
    for (const role of ONLINE_ROLES) {
      let row = await this.#deps.store.db.selectFrom('tuf_online_keys').selectAll().where('role', '=', role).executeTakeFirst();
      if (row === undefined) {
        const fresh = generateTufKey();
        const values = { role, keyid: fresh.keyid, public_key: JSON.stringify(fresh.publicKey), sealed_private_key: this.#deps.keyRing.seal(Buffer.from(fresh.privateKeyPem), `tuf:${role}`), created_at: this.#deps.clock.now().toISOString() };
        // Another node may create it at the same moment: the first one stays.
        await this.#deps.store.db.insertInto('tuf_online_keys').values(values).onConflict((oc) => oc.column('role').doNothing()).execute();
        row = await this.#deps.store.db.selectFrom('tuf_online_keys').selectAll().where('role', '=', role).executeTakeFirstOrThrow();
      }
      keys[role] = privateKeySigner(this.#deps.keyRing.open(row.sealed_private_key, `tuf:${role}`).toString('utf8'));
    }
    return keys as Record<OnlineRole, TufSigner>;
  }

  async #requireRoot(): Promise<Metadata<Root>> {
    const root = await this.#root();
    if (root === null) throw new FleetwardError('FW_ERR_UPDATES_NOT_SET_UP', 'the update repository has no root yet: propose one (fleetward firmware root propose), sign it offline (fleetward firmware sign), import it (fleetward firmware root import)');
    return root;
  }

  async #root(): Promise<Metadata<Root> | null> {
    const row = await this.#latest(MetadataKind.Root);
    return row === null ? null : parse(MetadataKind.Root, row.json);
  }

  async #targets(): Promise<Metadata<Targets> | null> {
    const row = await this.#latest(MetadataKind.Targets);
    return row === null ? null : parse(MetadataKind.Targets, row.json);
  }

  async #latestVersion(role: MetadataKind): Promise<number | null> {
    const row = await this.#deps.store.db.selectFrom('tuf_metadata').select('version').where('role', '=', role).orderBy('version', 'desc').limit(1).executeTakeFirst();
    return row?.version ?? null;
  }

  async #latest(role: MetadataKind): Promise<{ version: number; expires: string; created: string; body: Buffer; json: unknown } | null> {
    const row = await latestRow(this.#deps.store.db, role);
    return row === null ? null : { version: row.version, expires: row.expires_at, created: row.created_at, body: Buffer.from(row.body), json: JSON.parse(row.body) as unknown };
  }

  #daysFromNow(days: number): Date {
    return new Date(this.#deps.clock.now().getTime() + days * 86_400_000);
  }
}

async function latestRow(db: Kysely<Tables>, role: MetadataKind) {
  return (await db.selectFrom('tuf_metadata').selectAll().where('role', '=', role).orderBy('version', 'desc').limit(1).executeTakeFirst()) ?? null;
}

async function signOnline<T extends { toJSON(): unknown; signed: { type: string; version: number; expires: string } }>(metadata: T, signer: TufSigner): Promise<{ signed: T['signed']; toJSON(): unknown }> {
  const json = metadata.toJSON() as { signed: unknown; signatures: { keyid: string; sig: string }[] };
  const signed = await addSignatures(json, [signer]);
  return { signed: metadata.signed, toJSON: () => signed };
}

function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_EXPIRES_DAYS) throw new FleetwardError('FW_ERR_VALIDATION', `expiry is 1 to ${MAX_EXPIRES_DAYS} days`, { field: 'expiresDays' });
}
