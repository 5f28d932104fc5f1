import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { FleetwardError, SEALED_ALG, sealingPublicKeyOf, type SealingKey } from '@fleetward/protocol';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import { dataKeyLabel, type KeySealer } from './data-keys.js';

/** A backend sealing key as operators see it. */
export interface SealingKeyInfo extends SealingKey {
  readonly generation: number;
  readonly createdAt: string;
  /** The key devices are told to seal to; the others only open what was sealed to them. */
  readonly active: boolean;
}

export interface SealingKeyDependencies {
  readonly store: Store;
  /** The node's key ring: seals the private keys at rest like the other data keys. */
  readonly sealer: KeySealer;
  readonly clock: Clock;
  readonly audit: AuditLog;
}

interface LoadedKey {
  readonly generation: number;
  readonly createdAt: string;
  readonly privateKey: KeyObject;
  readonly published: SealingKey;
}

/** Rows of `data_keys` holding sealing keys: `sealing:<generation>`, the generation unique, so two nodes cannot both create one. */
const ROW = /^sealing:([1-9][0-9]{0,8})$/;
/** After an unknown key id, look for keys made on other nodes at most this often (milliseconds). */
const MISS_REFRESH_MS = 5_000;

function rowName(generation: number): string {
  return `sealing:${generation}`;
}

/** Key id: the first 64 bits of SHA-256 of the raw public key, hex (names the key without a registry). */
function keyIdOf(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64url')).digest().subarray(0, 8).toString('hex');
}

/**
 * The backend's X25519 sealing keys (rule 9): devices seal what they keep before upload to the
 * active key's public half, and ingest opens it with the private half. Private keys are sealed at
 * rest with the node's key ring in `data_keys` (label `data:sealing:<generation>`), so a KEK
 * rotation re-seals them with the other data keys. The first key is made on first use. Rotation
 * adds a key and makes it active; older keys stay, so whatever a device sealed before still opens.
 * `current` and `lookup` answer from memory: they sit on the device and ingest paths.
 */
export class SealingKeys {
  readonly #deps: SealingKeyDependencies;
  readonly #byId = new Map<string, LoadedKey>();
  readonly #loaded = new Set<string>();
  #active: LoadedKey | null = null;
  #creating: Promise<SealingKey> | null = null;
  #lastMissRefreshMs = Number.NEGATIVE_INFINITY;

  constructor(deps: SealingKeyDependencies) {
    this.#deps = deps;
  }

  /** The key devices seal to (created on first use). */
  async current(): Promise<SealingKey> {
    if (this.#active !== null) return this.#active.published;
    this.#creating ??= this.#createFirst().finally(() => (this.#creating = null));
    return this.#creating;
  }

  /**
   * The private key of a key id, for opening. A miss may mean another node made the key a moment
   * ago: the keys are reloaded in the background (at most every few seconds), so a retry succeeds.
   */
  lookup(keyId: string): KeyObject | undefined {
    const key = this.#byId.get(keyId);
    if (key !== undefined) return key.privateKey;
    const nowMs = this.#deps.clock.now().getTime();
    if (nowMs - this.#lastMissRefreshMs >= MISS_REFRESH_MS) {
      this.#lastMissRefreshMs = nowMs;
      this.refresh().catch(() => undefined);
    }
    return undefined;
  }

  /** Every sealing key, newest first. */
  async list(): Promise<SealingKeyInfo[]> {
    await this.refresh();
    return [...this.#byId.values()].sort((a, b) => b.generation - a.generation).map((k) => this.#info(k));
  }

  /** Makes a new key active; the previous ones keep opening what was sealed to them. */
  async rotate(actor: Actor): Promise<{ readonly previous: string | null; readonly active: SealingKeyInfo }> {
    await this.refresh();
    const previous = this.#active;
    const created = await this.#insert((previous?.generation ?? 0) + 1, actor);
    if (created === null) throw new FleetwardError('FW_ERR_CONFLICT', 'the sealing key was rotated elsewhere at the same moment; check the current key before rotating again', {});
    await this.refresh();
    return { previous: previous?.published.keyId ?? null, active: this.#info(this.#mustHave(created)) };
  }

  /** Loads keys made since (here or on another node); true if the active key changed. */
  async refresh(): Promise<boolean> {
    const rows = await this.#deps.store.db.selectFrom('data_keys').select(['name', 'sealed', 'created_at']).where('name', 'like', 'sealing:%').execute();
    const before = this.#active;
    for (const row of rows) {
      const match = ROW.exec(row.name);
      if (match === null || this.#loaded.has(row.name)) continue;
      const privateKey = createPrivateKey({ key: this.#deps.sealer.open(row.sealed, dataKeyLabel(row.name)), format: 'der', type: 'pkcs8' });
      const publicKey = sealingPublicKeyOf(privateKey);
      const key: LoadedKey = { generation: Number(match[1]), createdAt: row.created_at, privateKey, published: { alg: SEALED_ALG, keyId: keyIdOf(publicKey), publicKey } };
      this.#byId.set(key.published.keyId, key);
      this.#loaded.add(row.name);
      if (this.#active === null || key.generation > this.#active.generation) this.#active = key;
    }
    return this.#active !== before;
  }

  async #createFirst(): Promise<SealingKey> {
    await this.refresh();
    if (this.#active === null) {
      // Several nodes may get here at once: one insert wins, every node loads the winner.
      await this.#insert(1, { name: 'node' });
      await this.refresh();
    }
    return this.#mustHave(null).published;
  }

  /** Inserts a new key of this generation unless one exists; returns its key id, or null if another won. */
  async #insert(generation: number, actor: Actor): Promise<string | null> {
    const { store, sealer, clock, audit } = this.#deps;
    const { privateKey } = generateKeyPairSync('x25519');
    const keyId = keyIdOf(sealingPublicKeyOf(privateKey));
    const name = rowName(generation);
    const sealed = sealer.seal(privateKey.export({ format: 'der', type: 'pkcs8' }), dataKeyLabel(name));
    return store.db.transaction().execute(async (trx) => {
      const inserted = await trx.insertInto('data_keys').values({ name, sealed, created_at: clock.now().toISOString() }).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return null;
      await audit.recordWithin(trx, [{ ...actorFields(actor), action: 'data.sealing-key.rotate', outcome: 'success', target: `sealing-key:${keyId}`, details: { generation, previous: generation === 1 ? null : (this.#active?.published.keyId ?? null) } }]);
      return keyId;
    });
  }

  /** The key of this id (or the active key), which must be loaded by now. */
  #mustHave(keyId: string | null): LoadedKey {
    const key = keyId === null ? this.#active : this.#byId.get(keyId);
    if (key === undefined || key === null) throw new FleetwardError('FW_ERR_INTERNAL', 'a sealing key just stored could not be loaded', {});
    return key;
  }

  #info(key: LoadedKey): SealingKeyInfo {
    return { ...key.published, generation: key.generation, createdAt: key.createdAt, active: key === this.#active };
  }
}
