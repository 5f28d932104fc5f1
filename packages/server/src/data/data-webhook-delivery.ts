import { randomBytes } from 'node:crypto';
import type { Role } from '../access/roles.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import { httpsPost, type WebhookPost } from '../webhooks/https-webhook.js';
import { backoffMs, DELIVERY_HEADER, SIGNATURE_HEADER, signBody } from '../webhooks/webhook-signature.js';
import { isAuditedClass, type DataGrants } from './classification.js';
import type { FieldSpec } from './contract.js';
import type { KeySealer } from './data-keys.js';
import { assembleBatch, type Batch, type ConsumerView, type SpecsOf, type WebhookRecord } from './data-webhook-batch.js';
import { readFeed, type FeedPosition, type FeedRow } from './data-webhook-feed.js';
import { noteFieldReads, type FieldSpecIndex } from './disclosure.js';

/** Every limit of data webhook delivery, named, with its unit. */
export interface DeliveryOptions {
  /** Messages per batch. */
  readonly batchMessages: number;
  /** Bytes of records per batch (one larger message still goes, alone). */
  readonly batchBytes: number;
  /** Stored rows read at a time: with one batch in flight, what bounds the worker's memory. */
  readonly scanRows: number;
  /** Batches (or skips over unselected data) per consumer per run, so one busy consumer cannot hold the job. */
  readonly stepsPerRun: number;
  /** Milliseconds a receiver has to answer one POST. */
  readonly timeoutMs: number;
  /** Backoff after the n-th failed attempt of a batch: base × 2ⁿ⁻¹ milliseconds, capped. */
  readonly baseBackoffMs: number;
  readonly maxBackoffMs: number;
}

export const DEFAULT_DELIVERY_OPTIONS: DeliveryOptions = { batchMessages: 250, batchBytes: 1_048_576, scanRows: 500, stepsPerRun: 50, timeoutMs: 10_000, baseBackoffMs: 1000, maxBackoffMs: 300_000 };

export interface DeliveryDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly sealer: KeySealer;
  readonly specs: FieldSpecIndex;
  readonly grants: DataGrants;
  readonly post?: WebhookPost;
}

/** What one run did, over every consumer. */
export interface DeliveryRun {
  readonly delivered: number;
  readonly records: number;
  readonly failed: number;
}

type Row = Tables['data_webhooks'];
type Step = 'idle' | 'advanced' | 'delivered' | 'failed';
interface StepOutcome {
  readonly step: Step;
  readonly records: number;
}
interface InFlight {
  readonly id: string;
  readonly sequence: number;
  readonly end: FeedPosition;
}

/** The label a consumer's HMAC secret is sealed under, so a sealed secret cannot be moved to another consumer. */
export function secretLabel(name: string): string {
  return `data:webhook:${name}`;
}

/** Who reads, in the audit trail, when a consumer is sent data. */
export function consumerActor(name: string): string {
  return `data-webhook:${name}`;
}

export function cursorOf(row: Row): FeedPosition {
  return { txid: Number(row.cursor_txid), id: Number(row.cursor_id) };
}

/**
 * Delivers the minimized telemetry stream to each active consumer, from its cursor in the store:
 * one batch in flight per consumer, signed like alert notifications, resent with the same
 * delivery id (backing off exponentially, without giving up) until the receiver answers 2xx; only
 * then does the cursor move past it. At least once, in order: a batch is made only from what is
 * committed, a restart or an outage resumes at the cursor, and a repeated batch repeats its id.
 */
export class DataWebhookDelivery {
  readonly #deps: DeliveryDependencies;
  readonly #options: DeliveryOptions;
  readonly #post: WebhookPost;
  /** Names this worker in leases: one sender per consumer across the nodes sharing a database. */
  readonly #owner = `dw-${randomBytes(8).toString('hex')}`;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(deps: DeliveryDependencies, options: DeliveryOptions) {
    this.#deps = deps;
    this.#options = options;
    this.#post = deps.post ?? httpsPost;
  }

  /** One pass over the active consumers; runs one after the other when called while one is going. */
  run(at?: Date): Promise<DeliveryRun> {
    const run = this.#chain.then(() => this.#pass(at));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #pass(at: Date | undefined): Promise<DeliveryRun> {
    const names = await this.#deps.store.db.selectFrom('data_webhooks').select('name').where('state', '=', 'active').orderBy('name').execute();
    const totals = { delivered: 0, records: 0, failed: 0 };
    for (const { name } of names) {
      for (let step = 0; step < this.#options.stepsPerRun; step += 1) {
        const outcome = await this.#step(name, at ?? this.#deps.clock.now());
        if (outcome.step === 'delivered') totals.delivered += 1;
        if (outcome.step === 'failed') totals.failed += 1;
        totals.records += outcome.records;
        if (outcome.step !== 'delivered' && outcome.step !== 'advanced') break;
      }
    }
    return totals;
  }

  /** The next thing to do for one consumer, under its lease. */
  async #step(name: string, now: Date): Promise<StepOutcome> {
    const idle: StepOutcome = { step: 'idle', records: 0 };
    const row = await this.#row(name);
    if (row === undefined || row.state !== 'active' || (row.next_attempt_at !== null && row.next_attempt_at > now.toISOString())) return idle;
    // Checked before taking the lease, so an idle consumer costs one read per run, no write.
    if (row.batch_id === null && (await readFeed(this.#deps.store, cursorOf(row), { limit: 1 })).length === 0) return idle;
    if (!(await this.#claim(name, now))) return idle;
    try {
      const claimed = await this.#row(name);
      if (claimed === undefined || claimed.state !== 'active') return idle;
      return claimed.batch_id === null ? await this.#next(claimed, now) : await this.#resend(claimed, now);
    } finally {
      await this.#deps.store.db.updateTable('data_webhooks').set({ lease_owner: null, lease_until: null }).where('name', '=', name).where('lease_owner', '=', this.#owner).execute();
    }
  }

  /** A new batch from the cursor: recorded (and its disclosure audited) before its first attempt. */
  async #next(row: Row, now: Date): Promise<StepOutcome> {
    const rows = await readFeed(this.#deps.store, cursorOf(row), { limit: this.#options.scanRows });
    const limits = { maxMessages: this.#options.batchMessages, maxBytes: this.#options.batchBytes };
    const batch = assembleBatch(rows, rows.length === this.#options.scanRows, viewOf(row), await this.#specsOf(rows), this.#deps.grants, limits);
    if (batch.end === null) return { step: 'idle', records: 0 };
    if (batch.records.length === 0) {
      // Nothing here for this consumer: move past it without a delivery.
      await this.#skipTo(row, batch.end);
      return { step: 'advanced', records: 0 };
    }
    const flight: InFlight = { id: `dd-${randomBytes(12).toString('hex')}`, sequence: Number(row.sequence) + 1, end: batch.end };
    if (!(await this.#open(row, flight, batch, now))) return { step: 'idle', records: 0 };
    return this.#send(row, flight, batch.records, 1, now);
  }

  /** The batch in flight again: the same rows, so the same records (less any erased or expired since). */
  async #resend(row: Row, now: Date): Promise<StepOutcome> {
    const flight: InFlight = { id: row.batch_id as string, sequence: Number(row.sequence), end: { txid: Number(row.batch_end_txid), id: Number(row.batch_end_id) } };
    const rows = await readFeed(this.#deps.store, cursorOf(row), { limit: this.#options.scanRows, through: flight.end });
    const batch = assembleBatch(rows, false, viewOf(row), await this.#specsOf(rows), this.#deps.grants, { maxMessages: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER });
    if (batch.records.length === 0) {
      await this.#finish(row, flight, { records: 0, status: null, at: now });
      return { step: 'advanced', records: 0 };
    }
    return this.#send(row, flight, batch.records, Number(row.attempts) + 1, now);
  }

  async #send(row: Row, flight: InFlight, records: readonly WebhookRecord[], attempt: number, now: Date): Promise<StepOutcome> {
    // `sentAt` is the attempt's time, inside the signed body: a receiver can refuse stale replays
    // by it, and a retry after a long outage is still fresh.
    const body = JSON.stringify({ type: 'fleetward.data', delivery: flight.id, sequence: flight.sequence, consumer: row.name, purpose: row.purpose, sentAt: now.toISOString(), attempt, records });
    let status: number | null = null;
    let error: string | null = null;
    try {
      const secret = this.#deps.sealer.open(row.secret_sealed, secretLabel(row.name));
      const headers = { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(secret, body), [DELIVERY_HEADER]: flight.id, 'user-agent': 'fleetward-data-webhook' };
      status = await this.#post(row.url, body, headers, row.ca_pem, this.#options.timeoutMs);
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (e) {
      error = e instanceof Error ? e.message.slice(0, 300) : 'delivery failed';
    }
    if (error === null) {
      await this.#finish(row, flight, { records: records.length, status, at: now });
      return { step: 'delivered', records: records.length };
    }
    const next = new Date(now.getTime() + backoffMs(attempt, { baseMs: this.#options.baseBackoffMs, capMs: this.#options.maxBackoffMs }));
    await this.#deps.store.db
      .updateTable('data_webhooks')
      .set((eb) => ({ attempts: attempt, failed_attempts: eb('failed_attempts', '+', 1), last_status: status, last_error: error, last_attempt_at: now.toISOString(), next_attempt_at: next.toISOString() }))
      .where('name', '=', row.name)
      .where('batch_id', '=', flight.id)
      .execute();
    return { step: 'failed', records: 0 };
  }

  /** Records the batch in flight, the fields it discloses, and (personal or sensitive) its audit event, together. */
  async #open(row: Row, flight: InFlight, batch: Batch, now: Date): Promise<boolean> {
    const at = now.toISOString();
    const audited = [...batch.disclosed.values()].filter((s) => isAuditedClass(s.classification));
    return this.#deps.store.db.transaction().execute(async (trx) => {
      const opened = await trx
        .updateTable('data_webhooks')
        .set({ batch_id: flight.id, batch_end_txid: flight.end.txid, batch_end_id: flight.end.id, sequence: flight.sequence, attempts: 0, next_attempt_at: null })
        .where('name', '=', row.name)
        .where('lease_owner', '=', this.#owner)
        .where('batch_id', 'is', null)
        .executeTakeFirst();
      if (Number(opened.numUpdatedRows) !== 1) return false;
      await noteFieldReads(trx, batch.disclosed.values(), row.purpose, at);
      if (audited.length > 0) {
        const things = [...new Set(batch.records.map((r) => r.thing))].sort();
        await this.#deps.audit.recordWithin(trx, [
          {
            actor: consumerActor(row.name),
            action: 'data.read',
            outcome: 'success',
            target: consumerActor(row.name),
            details: { purpose: row.purpose, role: row.role, delivery: flight.id, sequence: flight.sequence, messages: batch.records.length, things, fields: audited.map((s) => `${s.contract}/${s.path}`), classes: [...new Set(audited.map((s) => s.classification))] },
          },
        ]);
      }
      return true;
    });
  }

  /** The receiver acknowledged the batch (or nothing was left of it): the cursor moves past it. */
  async #finish(row: Row, flight: InFlight, outcome: { readonly records: number; readonly status: number | null; readonly at: Date }): Promise<void> {
    const at = outcome.at.toISOString();
    const sent = outcome.status !== null;
    await this.#deps.store.db
      .updateTable('data_webhooks')
      .set((eb) => ({
        cursor_txid: flight.end.txid,
        cursor_id: flight.end.id,
        batch_id: null,
        batch_end_txid: null,
        batch_end_id: null,
        attempts: 0,
        next_attempt_at: null,
        ...(sent && {
          last_status: outcome.status,
          last_error: null,
          last_attempt_at: at,
          last_delivery_id: flight.id,
          last_delivery_at: at,
          last_delivery_records: outcome.records,
          delivered_batches: eb('delivered_batches', '+', 1),
          delivered_records: eb('delivered_records', '+', outcome.records),
        }),
      }))
      .where('name', '=', row.name)
      .where('batch_id', '=', flight.id)
      .execute();
  }

  /** Moves a consumer's cursor over rows it has nothing in, if it still holds the lease and nothing is in flight. */
  async #skipTo(row: Row, end: FeedPosition): Promise<void> {
    await this.#deps.store.db.updateTable('data_webhooks').set({ cursor_txid: end.txid, cursor_id: end.id }).where('name', '=', row.name).where('lease_owner', '=', this.#owner).where('batch_id', 'is', null).execute();
  }

  async #claim(name: string, now: Date): Promise<boolean> {
    const until = new Date(now.getTime() + this.#options.timeoutMs + 30_000).toISOString();
    const claimed = await this.#deps.store.db
      .updateTable('data_webhooks')
      .set({ lease_owner: this.#owner, lease_until: until })
      .where('name', '=', name)
      .where('state', '=', 'active')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now.toISOString())]))
      .executeTakeFirst();
    return Number(claimed.numUpdatedRows) === 1;
  }

  #row(name: string): Promise<Row | undefined> {
    return this.#deps.store.db.selectFrom('data_webhooks').selectAll().where('name', '=', name).executeTakeFirst();
  }

  /** The field specs of every contract version the rows name, loaded before the pure batch assembly. */
  async #specsOf(rows: readonly FeedRow[]): Promise<SpecsOf> {
    const loaded = new Map<string, ReadonlyMap<string, FieldSpec>>();
    for (const row of rows) {
      const key = `${row.contract}@${row.version}`;
      if (!loaded.has(key)) loaded.set(key, await this.#deps.specs.of(row.contract, row.version));
    }
    return (contract, version) => loaded.get(`${contract}@${version}`) ?? new Map<string, FieldSpec>();
  }
}

function viewOf(row: Row): ConsumerView {
  return { contract: row.contract, topic: row.topic, purpose: row.purpose, role: row.role as Role };
}
