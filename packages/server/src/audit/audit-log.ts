import { sql, type Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { Clock } from '../clock.js';
import { canonicalJson } from '../json.js';
import { CommitPacer } from '../store/commit-pacer.js';
import { toStoreError, type Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import { ChainVerifier, chainHash, type ChainBreak, type ChainHead } from './audit-chain.js';
import { actorFields, type Actor, type AuditEvent, type AuditRecord } from './audit-events.js';

const MAX_BATCH = 1000;
/** Commits start at least this far apart (a reconnect storm audits every connect: its events share commits). */
const COMMIT_INTERVAL_MS = 10;
const INSERT_CHUNK = 500;
const VERIFY_PAGE = 10_000;
const MAX_FIELD_LENGTH = 512;
const MAX_DETAILS_BYTES = 16_384;

/** The columns of an event, named as an AuditRecord, so rows need no copying. */
const RECORD_COLUMNS = ['seq', 'ts', 'actor', 'action', 'target', 'outcome', 'source', 'details', 'prev_hash as prevHash', 'hash'] as const;

export interface AuditVerification {
  readonly ok: boolean;
  readonly checked: number;
  readonly head: ChainHead | null;
  readonly firstBreak: ChainBreak | null;
}

/**
 * Evidence about the events kept outside the chain (signed checkpoints, audit-checkpoints.ts),
 * checked in the same walk so the first bad event is named whichever check finds it.
 */
export interface EventWitness {
  /** Called with the last sequence number of each page before its events are pushed. */
  prepare(throughSeq: number): Promise<ChainBreak | null>;
  /** Called for each event the chain accepted, in order. */
  push(row: AuditRecord): ChainBreak | null;
  /** Called after the last event of the trail being checked. */
  finish(lastSeq: number): Promise<ChainBreak | null>;
}

export interface AuditQuery {
  readonly afterSeq?: number;
  readonly limit: number;
  readonly action?: string;
  readonly actor?: string;
}

interface Pending {
  readonly event: AuditEvent;
  readonly ts: string;
  readonly details: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The append-only, hash-chained audit trail. Every operator action and security-relevant event
 * goes through `record` (or `recordWithin`, inside the transaction of the change it describes).
 * Appends lock the head row first, so several processes and nodes extend one chain in turn.
 */
export class AuditLog {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #onAppend: (count: number) => void;
  #queue: Pending[] = [];

  /** Events accepted but not yet committed (the group-commit queue). */
  get pending(): number {
    return this.#queue.length;
  }
  #draining: Promise<void> | null = null;
  readonly #pacer = new CommitPacer(COMMIT_INTERVAL_MS);

  constructor(store: Store, clock: Clock, onAppend: (count: number) => void = () => undefined) {
    this.#store = store;
    this.#clock = clock;
    this.#onAppend = onAppend;
  }

  /**
   * Appends an event. Events recorded close together are committed in one transaction (group
   * commit); the promise resolves only once the event is durable, and rejects if it is not.
   */
  record(event: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Throwing inside the executor rejects the promise: a bad event is a rejection, never a synchronous throw.
      const details = checkedDetails(event);
      this.#queue.push({ event, ts: this.#clock.now().toISOString(), details, resolve, reject });
      this.#draining ??= this.#pacer.nextSlot().then(() => this.#drain());
    });
  }

  /** Appends events inside the caller's transaction: they commit, or roll back, with the change. */
  async recordWithin(trx: Transaction<Tables>, events: readonly AuditEvent[]): Promise<void> {
    const ts = this.#clock.now().toISOString();
    await appendEvents(trx, events.map((event) => ({ event, ts, details: checkedDetails(event) })));
    this.#onAppend(events.length);
  }

  /** Waits until every event recorded so far is committed (or failed). */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      try {
        this.#pacer.started();
        await this.#store.db.transaction().execute((trx) => appendEvents(trx, batch));
        this.#onAppend(batch.length);
        for (const pending of batch) pending.resolve();
      } catch (error) {
        const failure = toStoreError(error, this.#store.location, 'audit append');
        for (const pending of batch) pending.reject(failure);
      }
      if (this.#queue.length > 0) await this.#pacer.nextSlot();
    }
    this.#draining = null;
  }

  async list(query: AuditQuery): Promise<AuditRecord[]> {
    let select = this.#store.db.selectFrom('audit_events').select(RECORD_COLUMNS).where('seq', '>', query.afterSeq ?? 0);
    if (query.action !== undefined) select = select.where('action', '=', query.action);
    if (query.actor !== undefined) select = select.where('actor', '=', query.actor);
    return select.orderBy('seq').limit(query.limit).execute();
  }

  /**
   * Walks the whole chain in order and reports the first event that fails, if any. A witness
   * must take its snapshot before calling this (the head is read here, after it).
   */
  async verify(witness?: EventWitness): Promise<AuditVerification> {
    const db = this.#store.db;
    const head = await readHead(this.#store);
    const verifier = new ChainVerifier();
    let afterSeq = 0;
    for (;;) {
      let page = db.selectFrom('audit_events').select(RECORD_COLUMNS).where('seq', '>', afterSeq);
      // Events appended while we verify are not part of the trail we set out to check.
      if (head !== null) page = page.where('seq', '<=', head.seq);
      const rows = await page.orderBy('seq').limit(VERIFY_PAGE).execute();
      const prepared = rows.length > 0 && witness ? await witness.prepare((rows.at(-1) as AuditRecord).seq) : null;
      if (prepared) return { ok: false, checked: verifier.checked, head, firstBreak: prepared };
      for (const row of rows) {
        const failure = verifier.push(row) ?? witness?.push(row) ?? null;
        if (failure) return { ok: false, checked: verifier.checked, head, firstBreak: failure };
      }
      if (rows.length < VERIFY_PAGE) break;
      afterSeq = (rows.at(-1) as AuditRecord).seq;
    }
    const failure = verifier.finish(head) ?? (await witness?.finish(verifier.checked)) ?? (await this.#unrecordedEvents(head));
    return { ok: failure === null, checked: verifier.checked, head, firstBreak: failure };
  }

  /** Verifies the trail and records who verified it and with what result. */
  async verifyAs(actor: Actor): Promise<AuditVerification> {
    const result = await this.verify();
    await this.record({
      ...actorFields(actor),
      action: 'audit.verify',
      outcome: result.ok ? 'success' : 'failure',
      details: { checked: result.checked, ...(result.firstBreak && { firstBreak: { ...result.firstBreak } }) },
    });
    return result;
  }

  /** Events past the head are legitimate only if the head moved on while we verified. */
  async #unrecordedEvents(head: ChainHead | null): Promise<ChainBreak | null> {
    if (head === null) return null;
    const next = await this.#store.db.selectFrom('audit_events').select('seq').where('seq', '>', head.seq).orderBy('seq').limit(1).executeTakeFirst();
    if (!next) return null;
    const latest = await readHead(this.#store);
    if (latest !== null && latest.seq > head.seq) return null;
    return { kind: 'head-mismatch', seq: next.seq, message: `event ${next.seq} was added without updating the head` };
  }
}

async function readHead(store: Store): Promise<ChainHead | null> {
  const row = await store.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  return row ?? null;
}

async function appendEvents(trx: Transaction<Tables>, batch: readonly Pick<Pending, 'event' | 'ts' | 'details'>[]): Promise<void> {
  // Locks the head row (PostgreSQL) inside the write transaction (SQLite: BEGIN IMMEDIATE), so
  // concurrent writers on any node extend the chain one after the other.
  const head = await trx.updateTable('audit_head').set({ seq: sql<number>`seq` }).where('id', '=', 1).returning(['seq', 'hash']).executeTakeFirst();
  if (!head) throw new FleetwardError('FW_ERR_AUDIT_CHAIN_BROKEN', 'the audit head record is missing; run `fleetward audit verify`');
  let seq = head.seq;
  let prevHash = head.hash;
  const rows = batch.map(({ event, ts, details }): Tables['audit_events'] => {
    seq += 1;
    const target = event.target ?? null;
    const source = event.source ?? null;
    const hash = chainHash({ seq, ts, actor: event.actor, action: event.action, target, outcome: event.outcome, source, details, prevHash });
    const row = { seq, ts, actor: event.actor, action: event.action, target, outcome: event.outcome, source, details, prev_hash: prevHash, hash };
    prevHash = hash;
    return row;
  });
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx.insertInto('audit_events').values(rows.slice(i, i + INSERT_CHUNK)).execute();
  }
  await trx.updateTable('audit_head').set({ seq, hash: prevHash }).where('id', '=', 1).execute();
}

function checkedDetails(event: AuditEvent): string {
  for (const field of [event.actor, event.action, event.target, event.source]) {
    if (field !== undefined && (field.length === 0 || field.length > MAX_FIELD_LENGTH)) {
      throw new FleetwardError('FW_ERR_INTERNAL', `audit event field of length ${field.length} is out of bounds`);
    }
  }
  const details = canonicalJson(event.details ?? {});
  if (Buffer.byteLength(details) > MAX_DETAILS_BYTES) {
    throw new FleetwardError('FW_ERR_INTERNAL', `audit event details exceed ${MAX_DETAILS_BYTES} bytes`);
  }
  return details;
}
