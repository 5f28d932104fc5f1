import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { ChainBreak } from './audit-chain.js';
import type { AuditRecord } from './audit-events.js';

const CHECKPOINT_VERSION = 'fw-audit-checkpoint-v1';

/** A signed statement: "the trail's event `seq` has hash `hash`", made at `ts` with key `keyId`. */
export interface AuditCheckpoint {
  /** 1, 2, 3 … without gaps, in one sequence across every node. */
  readonly number: number;
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  readonly keyId: string;
  /** Ed25519 over `checkpointMessage(...)`, base64. */
  readonly signature: string;
}

/**
 * The bytes a checkpoint signature covers: a JSON array of strings and integers, which has one
 * form only, so an external party can rebuild it (docs/audit-trail.md).
 */
export function checkpointMessage(c: Omit<AuditCheckpoint, 'signature'>): Buffer {
  return Buffer.from(JSON.stringify([CHECKPOINT_VERSION, c.number, c.seq, c.hash, c.ts, c.keyId]), 'utf8');
}

export function signCheckpoint(fields: Omit<AuditCheckpoint, 'signature'>, privateKey: KeyObject): AuditCheckpoint {
  return { ...fields, signature: sign(null, checkpointMessage(fields), privateKey).toString('base64') };
}

/** The key id of an Ed25519 public key: the first 16 hex digits of SHA-256 over its SPKI DER. */
export function auditKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 16);
}

export function publicKeyPem(publicKey: KeyObject): string {
  return publicKey.export({ format: 'pem', type: 'spki' }).toString();
}

/** Parses an SPKI PEM into a trusted key, keyed by its id; throws unless it is Ed25519. */
export function trustedKey(pem: string): [string, KeyObject] {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 public key (${key.asymmetricKeyType ?? 'unknown'})`);
  return [auditKeyId(key), key];
}

function validSignature(c: AuditCheckpoint, key: KeyObject): boolean {
  try {
    return verify(null, checkpointMessage(c), key, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

/**
 * Checks checkpoints against the events, both in sequence order, next to a `ChainVerifier`: the
 * chain proves the events are consistent with each other, a checkpoint proves the event it names
 * is the one that existed when the key signed it. Pure: the caller reads rows and checkpoints and
 * supplies the trusted public keys (derived from the sealed private keys, or pinned by an auditor).
 */
export class CheckpointVerifier {
  readonly #keys: ReadonlyMap<string, KeyObject>;
  #pending: AuditCheckpoint[] = [];
  #expectedNumber = 1;
  #lastGood: AuditCheckpoint | null = null;
  #checked = 0;

  constructor(keys: ReadonlyMap<string, KeyObject>) {
    this.#keys = keys;
  }

  get checked(): number {
    return this.#checked;
  }

  /** The newest checkpoint that matched its event. */
  get latest(): AuditCheckpoint | null {
    return this.#lastGood;
  }

  /** Hands over the next checkpoints, in number order; checks their numbering and signatures. */
  add(checkpoints: readonly AuditCheckpoint[]): ChainBreak | null {
    for (const c of checkpoints) {
      if (c.number !== this.#expectedNumber) {
        return {
          kind: 'checkpoint-missing',
          seq: (this.#pending.at(-1) ?? this.#lastGood)?.seq ?? 0,
          checkpoint: this.#expectedNumber,
          message: `checkpoints ${this.#expectedNumber}..${c.number - 1} were deleted (checkpoint ${c.number} follows ${this.#expectedNumber - 1})`,
        };
      }
      const key = this.#keys.get(c.keyId);
      if (!key || !validSignature(c, key)) {
        return {
          kind: 'checkpoint-forged',
          seq: c.seq,
          checkpoint: c.number,
          message: key ? `checkpoint ${c.number} (event ${c.seq}) has an invalid signature: it was forged or altered` : `checkpoint ${c.number} (event ${c.seq}) is signed by key ${c.keyId}, which is not a trusted audit key`,
        };
      }
      const previous = this.#pending.at(-1) ?? this.#lastGood;
      if (previous !== null && c.seq < previous.seq) {
        return { kind: 'checkpoint-forged', seq: c.seq, checkpoint: c.number, message: `checkpoint ${c.number} names event ${c.seq}, before checkpoint ${previous.number}'s event ${previous.seq}` };
      }
      this.#pending.push(c);
      this.#expectedNumber += 1;
    }
    return null;
  }

  /** The highest event sequence number a checkpoint handed over so far names (to know how far to read checkpoints). */
  get coveredSeq(): number {
    return (this.#pending.at(-1) ?? this.#lastGood)?.seq ?? 0;
  }

  /** Checks one event (already accepted by the chain verifier) against the checkpoints naming it. */
  push(row: AuditRecord): ChainBreak | null {
    while (this.#pending.length > 0 && (this.#pending[0] as AuditCheckpoint).seq === row.seq) {
      const c = this.#pending.shift() as AuditCheckpoint;
      if (c.hash !== row.hash) {
        const from = (this.#lastGood?.seq ?? 0) + 1;
        return {
          kind: 'checkpoint-mismatch',
          seq: row.seq,
          checkpoint: c.number,
          message: `event ${row.seq} is not the event checkpoint ${c.number} signed at ${c.ts}: events ${from}..${row.seq} were rewritten and the chain recomputed`,
        };
      }
      this.#lastGood = c;
      this.#checked += 1;
    }
    return null;
  }

  /** After the last event: a checkpoint naming an event past the end means the newest events were deleted. */
  finish(lastSeq: number): ChainBreak | null {
    const c = this.#pending[0];
    if (c === undefined) return null;
    return {
      kind: 'truncated',
      seq: lastSeq + 1,
      checkpoint: c.number,
      message: `checkpoint ${c.number} signed event ${c.seq} at ${c.ts}, but the trail ends at event ${lastSeq}: events ${lastSeq + 1}..${c.seq} (at least) were deleted`,
    };
  }
}
