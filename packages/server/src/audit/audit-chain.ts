import { createHash } from 'node:crypto';
import type { AuditRecord } from './audit-events.js';

/** The `prev_hash` of the first event. */
export const GENESIS_HASH = '0'.repeat(64);
const CHAIN_VERSION = 'fw-audit-v1';

export type ChainFields = Omit<AuditRecord, 'hash'>;

/**
 * SHA-256 over a canonical encoding of every field of the event, including its sequence number
 * and the previous event's hash: changing, removing or reordering any event changes every hash
 * after it. The encoding is a JSON array of strings and integers, which has one form only.
 */
export function chainHash(fields: ChainFields): string {
  const encoded = JSON.stringify([
    CHAIN_VERSION,
    fields.seq,
    fields.ts,
    fields.actor,
    fields.action,
    fields.target,
    fields.outcome,
    fields.source,
    fields.details,
    fields.prevHash,
  ]);
  return createHash('sha256').update(encoded).digest('hex');
}

export type ChainBreakKind =
  /** The event's content no longer matches its hash. */
  | 'modified'
  /** The event does not point at the hash of the event before it (one was replaced or reordered). */
  | 'unlinked'
  /** Sequence numbers jump: events were deleted. */
  | 'missing'
  /** The head records more events than the table holds: the newest events were deleted. */
  | 'truncated'
  /** The newest event is not the one the head records, or events exist past the head. */
  | 'head-mismatch'
  /** A signed checkpoint names this event with another hash: events were rewritten and the chain recomputed. */
  | 'checkpoint-mismatch'
  /** A checkpoint's signature does not verify with a trusted audit key. */
  | 'checkpoint-forged'
  /** Checkpoints were deleted (a gap in their numbers, or none left although a signing key exists). */
  | 'checkpoint-missing';

export interface ChainBreak {
  readonly kind: ChainBreakKind;
  /** The sequence number of the first event that fails. */
  readonly seq: number;
  /** The number of the checkpoint that exposes the break, when a checkpoint does. */
  readonly checkpoint?: number;
  readonly message: string;
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * Checks events one at a time in sequence order, so the whole trail never has to sit in memory.
 * Pure: the caller reads the rows and the head.
 */
export class ChainVerifier {
  #expectedSeq = 1;
  #prevHash = GENESIS_HASH;
  #checked = 0;

  get checked(): number {
    return this.#checked;
  }

  push(row: AuditRecord): ChainBreak | null {
    if (row.seq !== this.#expectedSeq) {
      return row.seq > this.#expectedSeq
        ? { kind: 'missing', seq: this.#expectedSeq, message: `events ${this.#expectedSeq}..${row.seq - 1} are missing` }
        : { kind: 'unlinked', seq: row.seq, message: `event ${row.seq} appears after event ${this.#expectedSeq - 1}` };
    }
    const { hash, ...fields } = row;
    if (chainHash(fields) !== hash) {
      return { kind: 'modified', seq: row.seq, message: `event ${row.seq} was modified: its content does not match its hash` };
    }
    if (row.prevHash !== this.#prevHash) {
      return { kind: 'unlinked', seq: row.seq, message: `event ${row.seq} does not follow event ${row.seq - 1}: the chain link is broken` };
    }
    this.#expectedSeq += 1;
    this.#prevHash = hash;
    this.#checked += 1;
    return null;
  }

  /** Compares the last event checked with the head written alongside the events. */
  finish(head: ChainHead | null): ChainBreak | null {
    const lastSeq = this.#expectedSeq - 1;
    if (head === null) {
      return { kind: 'head-mismatch', seq: lastSeq, message: 'the audit head record is missing' };
    }
    if (head.seq > lastSeq) {
      return { kind: 'truncated', seq: lastSeq + 1, message: `the trail ends at event ${lastSeq} but the head records ${head.seq} events: events ${lastSeq + 1}..${head.seq} were deleted` };
    }
    if (head.seq < lastSeq) {
      return { kind: 'head-mismatch', seq: head.seq + 1, message: `events ${head.seq + 1}..${lastSeq} were added without updating the head` };
    }
    if (head.hash !== this.#prevHash) {
      return { kind: 'head-mismatch', seq: lastSeq, message: `event ${lastSeq} is not the event the head records` };
    }
    return null;
  }
}
