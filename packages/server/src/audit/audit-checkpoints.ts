import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { KeyRing } from '../identity/key-ring.js';
import type { Job } from '../jobs/scheduler.js';
import { lockForTransaction } from '../store/locks.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import type { ChainBreak } from './audit-chain.js';
import { auditKeyId, CheckpointVerifier, publicKeyPem, signCheckpoint, type AuditCheckpoint } from './audit-checkpoint.js';
import { actorFields, type Actor, type AuditRecord } from './audit-events.js';
import type { AuditLog, AuditVerification, EventWitness } from './audit-log.js';

const LOCK = 'fleetward.audit.checkpoint';
const CHECKPOINT_PAGE = 1000;
const COLUMNS = ['number', 'seq', 'hash', 'ts', 'key_id as keyId', 'signature'] as const;

export interface AuditSigningKey {
  readonly keyId: string;
  readonly algorithm: 'Ed25519';
  readonly publicKey: string;
  readonly createdAt: string;
}

export interface CheckpointSummary {
  /** Checkpoints whose signature and event were checked. */
  readonly checked: number;
  /** The newest checkpoint that matched its event. */
  readonly latest: { readonly number: number; readonly seq: number; readonly ts: string; readonly keyId: string } | null;
  /** Events after the newest checkpoint: protected by the chain only, until the next checkpoint. */
  readonly uncovered: number;
  /** The keys the signatures were checked with. */
  readonly keys: readonly { readonly keyId: string; readonly publicKey: string }[];
}

export interface AuditTrailVerification extends AuditVerification {
  readonly checkpoints: CheckpointSummary;
  /** What verification could not rule out (e.g. no checkpoint yet). Not failures. */
  readonly warnings: readonly string[];
}

export interface AuditCheckpointDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly sealer: Pick<KeyRing, 'seal' | 'open'>;
  /** Also checkpoint once this many events were appended since the last one (0: by time only). */
  readonly everyEvents?: number;
  readonly onCheckpoint?: (checkpoint: AuditCheckpoint) => void;
  readonly onError?: (error: unknown) => void;
}

/**
 * Signs the audit head at intervals (docs/audit-trail.md, "Signed checkpoints"). The Ed25519 key is
 * generated on first use and sealed with the key ring, so someone with access to the database alone
 * can neither sign a checkpoint nor replace the key. One checkpoint sequence across every node:
 * checkpoints are made under a cluster-wide lock.
 */
export class AuditCheckpoints {
  readonly #deps: AuditCheckpointDeps;
  readonly #opened = new Map<string, KeyObject>();
  #appended = 0;
  #running: Promise<unknown> | null = null;

  constructor(deps: AuditCheckpointDeps) {
    this.#deps = deps;
  }

  /**
   * Counts appended events (wire into AuditLog's `onAppend`); once `everyEvents` have accumulated
   * a checkpoint is made in the background.
   */
  noteAppended(count: number): void {
    const every = this.#deps.everyEvents ?? 0;
    if (every <= 0) return;
    this.#appended += count;
    if (this.#appended >= every && this.#running === null) {
      this.#appended = 0;
      this.#running = this.checkpoint()
        .catch((error: unknown) => this.#deps.onError?.(error))
        .finally(() => (this.#running = null));
    }
  }

  /** Signs the current head unless the newest checkpoint already names it. Returns the new checkpoint, or null. */
  async checkpoint(): Promise<AuditCheckpoint | null> {
    const { store, clock } = this.#deps;
    const head = await store.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
    const last = await latestCheckpoint(store.db);
    if (!head || head.seq === 0 || (last !== undefined && Number(last.seq) >= Number(head.seq))) return null;
    const created = await store.db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, store.dialect, LOCK);
      // Read again under the lock: another node may have just signed this head.
      const current = await trx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
      const previous = await latestCheckpoint(trx);
      if (previous !== undefined && Number(previous.seq) >= Number(current.seq)) return null;
      const { keyId, privateKey } = await this.#signingKey(trx);
      const checkpoint = signCheckpoint({ number: Number(previous?.number ?? 0) + 1, seq: Number(current.seq), hash: current.hash, ts: clock.now().toISOString(), keyId }, privateKey);
      const { keyId: key_id, ...row } = checkpoint;
      await trx.insertInto('audit_checkpoints').values({ ...row, key_id }).execute();
      return checkpoint;
    });
    if (created) this.#deps.onCheckpoint?.(created);
    return created;
  }

  /** Waits for a checkpoint started by `noteAppended`. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** The signing keys, with their public keys as SPKI PEM, for an external party to check checkpoints. */
  async keys(): Promise<AuditSigningKey[]> {
    const trusted = await this.#trustedKeys();
    const rows = await this.#deps.store.db.selectFrom('audit_signing_keys').select(['key_id', 'created_at']).orderBy('created_at').execute();
    return rows.flatMap((r) => {
      const key = trusted.get(r.key_id);
      return key ? [{ keyId: r.key_id, algorithm: 'Ed25519' as const, publicKey: publicKeyPem(key), createdAt: r.created_at }] : [];
    });
  }

  async list(afterNumber: number, limit: number): Promise<AuditCheckpoint[]> {
    const rows = await this.#deps.store.db.selectFrom('audit_checkpoints').select(COLUMNS).where('number', '>', afterNumber).orderBy('number').limit(limit).execute();
    return rows.map(toCheckpoint);
  }

  /**
   * Verifies the chain and every checkpoint. Trusted keys are those whose sealed private key
   * opens with the key ring (the database alone cannot add one), or, if given, only `pinned`
   * (public keys an auditor kept, keyed by key id).
   */
  async verify(audit: Pick<AuditLog, 'verify'>, pinned?: ReadonlyMap<string, KeyObject>): Promise<AuditTrailVerification> {
    const db = this.#deps.store.db;
    const keys = pinned ?? (await this.#trustedKeys());
    // Snapshot before the head is read (in audit.verify): every checkpoint counted names an event at or before that head.
    const newest = Number((await latestCheckpoint(db))?.number ?? 0);
    const keyCount = Number((await db.selectFrom('audit_signing_keys').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const witness = new CheckpointWitness(db, keys, newest);
    const result = await audit.verify(witness);
    const checker = witness.verifier;
    const latest = checker.latest;
    let firstBreak = result.firstBreak;
    if (firstBreak === null && newest === 0 && keyCount > 0) {
      firstBreak = { kind: 'checkpoint-missing', seq: 0, checkpoint: 1, message: 'an audit signing key exists but there are no checkpoints: every checkpoint was deleted' };
    }
    const warnings: string[] = [];
    if (firstBreak === null && newest === 0 && (result.head?.seq ?? 0) > 0) {
      warnings.push('no checkpoint has been signed yet: the trail is protected by the hash chain only (a serving node signs one every interval)');
    }
    const uncovered = Math.max(0, (result.head?.seq ?? 0) - (latest?.seq ?? 0));
    return {
      ...result,
      ok: firstBreak === null,
      firstBreak,
      checkpoints: {
        checked: checker.checked,
        latest: latest && { number: latest.number, seq: latest.seq, ts: latest.ts, keyId: latest.keyId },
        uncovered,
        keys: [...keys].map(([keyId, key]) => ({ keyId, publicKey: publicKeyPem(key) })),
      },
      warnings,
    };
  }

  /** Verifies and records who verified with what result (`audit.verify`). */
  async verifyAs(audit: AuditLog, actor: Actor, pinned?: ReadonlyMap<string, KeyObject>): Promise<AuditTrailVerification> {
    const result = await this.verify(audit, pinned);
    await audit.record({
      ...actorFields(actor),
      action: 'audit.verify',
      outcome: result.ok ? 'success' : 'failure',
      details: { checked: result.checked, checkpoints: result.checkpoints.checked, ...(result.firstBreak && { firstBreak: { ...result.firstBreak } }) },
    });
    return result;
  }

  /** Re-seals the audit signing keys with the active key-encryption key (part of a KEK rotation); returns how many. */
  static async reseal(db: Kysely<Tables>, sealer: Pick<KeyRing, 'reseal'>): Promise<number> {
    const rows = await db.selectFrom('audit_signing_keys').select(['key_id', 'sealed_private_key']).execute();
    for (const row of rows) {
      await db.updateTable('audit_signing_keys').set({ sealed_private_key: sealer.reseal(row.sealed_private_key, `audit:${row.key_id}`) }).where('key_id', '=', row.key_id).execute();
    }
    return rows.length;
  }

  /** The newest key, created (under the checkpoint lock) if there is none. */
  async #signingKey(trx: Kysely<Tables>): Promise<{ keyId: string; privateKey: KeyObject }> {
    const row = await trx.selectFrom('audit_signing_keys').select(['key_id', 'sealed_private_key']).orderBy('created_at', 'desc').limit(1).executeTakeFirst();
    if (row) return { keyId: row.key_id, privateKey: this.#open(row.key_id, row.sealed_private_key) };
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const keyId = auditKeyId(publicKey);
    const sealed = this.#deps.sealer.seal(privateKey.export({ format: 'der', type: 'pkcs8' }), `audit:${keyId}`);
    await trx.insertInto('audit_signing_keys').values({ key_id: keyId, algorithm: 'Ed25519', public_key: publicKeyPem(publicKey), sealed_private_key: sealed, created_at: this.#deps.clock.now().toISOString() }).execute();
    this.#opened.set(keyId, privateKey);
    return { keyId, privateKey };
  }

  #open(keyId: string, sealed: string): KeyObject {
    let key = this.#opened.get(keyId);
    if (!key) {
      key = createPrivateKey({ key: this.#deps.sealer.open(sealed, `audit:${keyId}`), format: 'der', type: 'pkcs8' });
      this.#opened.set(keyId, key);
    }
    return key;
  }

  /** Public keys of the sealed keys that open, by the id derived from the key itself (never the stored columns). */
  async #trustedKeys(): Promise<Map<string, KeyObject>> {
    const rows = await this.#deps.store.db.selectFrom('audit_signing_keys').select(['key_id', 'sealed_private_key']).execute();
    const keys = new Map<string, KeyObject>();
    for (const row of rows) {
      let publicKey: KeyObject;
      try {
        publicKey = createPublicKey(this.#open(row.key_id, row.sealed_private_key));
      } catch {
        continue; // not sealed by our key ring: not trusted, and any checkpoint it "signed" is reported as forged
      }
      if (auditKeyId(publicKey) === row.key_id) keys.set(row.key_id, publicKey);
    }
    return keys;
  }
}

/** Feeds the checkpoints to a CheckpointVerifier page by page as the chain walk reaches them. */
class CheckpointWitness implements EventWitness {
  readonly verifier: CheckpointVerifier;
  readonly #db: Kysely<Tables>;
  readonly #newest: number;
  #loaded = 0;
  /** A failure found while loading, reported when the walk reaches its event so the first bad event wins. */
  #deferred: ChainBreak | null = null;

  constructor(db: Kysely<Tables>, keys: ReadonlyMap<string, KeyObject>, newest: number) {
    this.#db = db;
    this.#newest = newest;
    this.verifier = new CheckpointVerifier(keys);
  }

  async prepare(throughSeq: number): Promise<ChainBreak | null> {
    while (this.#deferred === null && this.#loaded < this.#newest && this.verifier.coveredSeq <= throughSeq) {
      const rows = await this.#db.selectFrom('audit_checkpoints').select(COLUMNS).where('number', '>', this.#loaded).where('number', '<=', this.#newest).orderBy('number').limit(CHECKPOINT_PAGE).execute();
      if (rows.length === 0) {
        this.#deferred = { kind: 'checkpoint-missing', seq: this.verifier.coveredSeq, checkpoint: this.#loaded + 1, message: `checkpoints ${this.#loaded + 1}..${this.#newest} were deleted` };
        break;
      }
      this.#deferred = this.verifier.add(rows.map(toCheckpoint));
      this.#loaded = Number((rows.at(-1) as { number: number }).number);
    }
    return null;
  }

  push(row: AuditRecord): ChainBreak | null {
    if (this.#deferred !== null && row.seq >= this.#deferred.seq) return this.#deferred;
    return this.verifier.push(row);
  }

  async finish(lastSeq: number): Promise<ChainBreak | null> {
    // Checkpoints may remain unread when the events they name were deleted.
    await this.prepare(Number.MAX_SAFE_INTEGER);
    return this.#deferred ?? this.verifier.finish(lastSeq);
  }
}

async function latestCheckpoint(db: Kysely<Tables>): Promise<{ number: number; seq: number } | undefined> {
  return db.selectFrom('audit_checkpoints').select(['number', 'seq']).orderBy('number', 'desc').limit(1).executeTakeFirst();
}

function toCheckpoint(row: { number: number; seq: number; hash: string; ts: string; keyId: string; signature: string }): AuditCheckpoint {
  return { number: Number(row.number), seq: Number(row.seq), hash: row.hash, ts: row.ts, keyId: row.keyId, signature: row.signature };
}

/** The periodic checkpoint job of a serving node (every `FLEETWARD_AUDIT_CHECKPOINT_SECONDS`). */
export function auditCheckpointJob(checkpoints: Pick<AuditCheckpoints, 'checkpoint'>, everySeconds: number): Job {
  return { name: 'audit.checkpoint', everyMs: everySeconds * 1000, run: () => checkpoints.checkpoint() };
}
