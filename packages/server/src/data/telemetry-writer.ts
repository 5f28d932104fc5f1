import { CompiledQuery } from 'kysely';
import type { Store, StoreDialect } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import type { StorageGroup } from './compiled-contract.js';

/** A token's vault entry: the value sealed with the vault key (field-crypto.ts). */
export interface VaultEntry {
  readonly token: string;
  readonly field: string;
  readonly sealed: string;
  readonly expiresAt: string;
}

/** One accepted message, minimized, as it is stored. */
export interface TelemetryRecord {
  readonly messageId: string;
  readonly thing: string;
  readonly thingType: string | null;
  readonly topic: string;
  readonly contract: string;
  readonly version: number;
  readonly receivedAt: string;
  readonly groups: readonly StorageGroup[];
  readonly vault: readonly VaultEntry[];
}

/** A publish to a topic no contract covers (the topic with the thing's own name replaced by its variable). */
export interface UnclassifiedSighting {
  readonly thingType: string;
  readonly topic: string;
  readonly outcome: 'refused' | 'passed';
  readonly at: string;
}

/** What an unclassified sighting is counted under; `key` identifies it. */
export interface SightingKind extends Omit<UnclassifiedSighting, 'at'> {
  readonly key: string;
}

const SIGHTING_WRITE_INTERVAL_MS = 1_000;

export interface WriterOptions {
  /** Messages written per transaction. */
  readonly batchMessages: number;
  /** Messages waiting to be written before new data is refused (FW_ERR_DATA_BACKLOG). */
  readonly maxPendingMessages: number;
}

export const DEFAULT_WRITER_OPTIONS: WriterOptions = { batchMessages: 2_000, maxPendingMessages: 50_000 };

/** Rows per INSERT statement: well inside SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const ROWS_PER_INSERT = 500;

/**
 * Writes accepted telemetry in batches: messages queued while a batch is written go together in
 * the next transaction (group commit), so one fsync covers thousands of rows. Bounded: when the
 * store falls behind, `enqueue` says no and the ingest refuses data rather than growing memory.
 */
export class TelemetryWriter {
  readonly #store: Store;
  readonly #options: WriterOptions;
  readonly #onError: (error: unknown, lost: number) => void;
  #queue: TelemetryRecord[] = [];
  #sightings = new Map<string, { readonly kind: SightingKind; count: number; readonly firstMs: number; lastMs: number }>();
  #sightingTimer: NodeJS.Timeout | null = null;
  #draining: Promise<void> | null = null;
  #written = 0;
  #lost = 0;

  constructor(store: Store, options: WriterOptions, onError: (error: unknown, lost: number) => void) {
    this.#store = store;
    this.#options = options;
    this.#onError = onError;
  }

  get pending(): number {
    return this.#queue.length;
  }

  get stats(): { readonly written: number; readonly lost: number; readonly pending: number } {
    return { written: this.#written, lost: this.#lost, pending: this.#queue.length };
  }

  /** Queues a record; false when the backlog is full (nothing was queued). */
  enqueue(record: TelemetryRecord): boolean {
    if (this.#queue.length >= this.#options.maxPendingMessages) return false;
    this.#queue.push(record);
    this.#schedule();
    return true;
  }

  /**
   * Counts a publish to a topic without a contract: aggregated per kind (thing type, topic shape,
   * outcome; `key` names it) and written at most once a second, so passing unclassified data costs
   * a counter increment per message.
   */
  noteUnclassified(kind: SightingKind, atMs: number): void {
    const seen = this.#sightings.get(kind.key);
    if (seen) {
      seen.count += 1;
      seen.lastMs = atMs;
    } else if (this.#sightings.size < 10_000) {
      this.#sightings.set(kind.key, { kind, count: 1, firstMs: atMs, lastMs: atMs });
    }
    this.#sightingTimer ??= setTimeout(() => {
      this.#sightingTimer = null;
      this.#schedule();
    }, SIGHTING_WRITE_INTERVAL_MS).unref();
  }

  /** Resolves when everything queued so far is written. */
  async flush(): Promise<void> {
    if (this.#sightingTimer !== null) clearTimeout(this.#sightingTimer);
    this.#sightingTimer = null;
    while (this.#draining !== null) await this.#draining;
    if (this.#queue.length > 0 || this.#sightings.size > 0) {
      this.#schedule();
      await this.flush();
    }
  }

  #schedule(): void {
    if (this.#draining !== null) return;
    this.#draining = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#drain()).finally(() => {
      this.#draining = null;
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#sightings.size > 0) {
      const batch = this.#queue.splice(0, this.#options.batchMessages);
      const sightings = [...this.#sightings.values()].map(({ kind, count, firstMs, lastMs }) => ({
        sighting: { thingType: kind.thingType, topic: kind.topic, outcome: kind.outcome, at: new Date(lastMs).toISOString() },
        count,
        first: new Date(firstMs).toISOString(),
      }));
      this.#sightings = new Map();
      try {
        await this.write(batch, sightings);
        this.#written += batch.length;
      } catch (error) {
        this.#lost += batch.length;
        this.#onError(error, batch.length);
      }
    }
  }

  /** Writes records and sightings in one transaction. */
  async write(records: readonly TelemetryRecord[], sightings: readonly { sighting: UnclassifiedSighting; count: number; first: string }[] = []): Promise<void> {
    const rows: Omit<Tables['data_telemetry'], 'id'>[] = [];
    const vault = new Map<string, VaultEntry & { thing: string; contract: string; createdAt: string }>();
    for (const r of records) {
      for (const g of r.groups) {
        rows.push({
          message_id: r.messageId,
          thing: r.thing,
          thing_type: r.thingType,
          topic: r.topic,
          contract: r.contract,
          version: r.version,
          classification: g.classification,
          fields: JSON.stringify(g.fields),
          classes: JSON.stringify(g.classes),
          received_at: r.receivedAt,
          expires_at: new Date(Date.parse(r.receivedAt) + g.retentionSeconds * 1000).toISOString(),
        });
      }
      for (const v of r.vault) {
        const seen = vault.get(v.token);
        // One row per token per statement (PostgreSQL refuses to update a row twice in one upsert).
        if (seen === undefined || seen.expiresAt < v.expiresAt) vault.set(v.token, { ...v, thing: r.thing, contract: r.contract, createdAt: r.receivedAt });
      }
    }
    await this.#store.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) await trx.executeQuery(insertTelemetry(this.#store.dialect, rows.slice(i, i + ROWS_PER_INSERT)));
      const entries = [...vault.values()];
      for (let i = 0; i < entries.length; i += ROWS_PER_INSERT) {
        await trx
          .insertInto('data_token_vault')
          .values(entries.slice(i, i + ROWS_PER_INSERT).map((v) => ({ token: v.token, thing: v.thing, contract: v.contract, field: v.field, sealed_value: v.sealed, created_at: v.createdAt, expires_at: v.expiresAt })))
          .onConflict((oc) =>
            oc
              .column('token')
              .doUpdateSet((eb) => ({ expires_at: eb.ref('excluded.expires_at') }))
              .where('data_token_vault.expires_at', '<', (eb) => eb.ref('excluded.expires_at')),
          )
          .execute();
      }
      for (const { sighting, count, first } of sightings) {
        await trx
          .insertInto('data_unclassified')
          .values({ thing_type: sighting.thingType, topic: sighting.topic, outcome: sighting.outcome, count, first_seen_at: first, last_seen_at: sighting.at })
          .onConflict((oc) => oc.columns(['thing_type', 'topic', 'outcome']).doUpdateSet((eb) => ({ count: eb('data_unclassified.count', '+', eb.ref('excluded.count')), last_seen_at: eb.ref('excluded.last_seen_at') })))
          .execute();
      }
    });
  }
}

const TELEMETRY_COLUMNS = ['message_id', 'thing', 'thing_type', 'topic', 'contract', 'version', 'classification', 'fields', 'classes', 'received_at', 'expires_at'] as const;
const insertTexts = new Map<string, string>();

/**
 * The multi-row INSERT of telemetry, its text built once per dialect and row count: the hot path of
 * storage, where building and compiling a query tree per batch cost more than SQLite's own work.
 */
function insertTelemetry(dialect: StoreDialect, rows: readonly Omit<Tables['data_telemetry'], 'id'>[]): CompiledQuery {
  const key = `${dialect}:${rows.length}`;
  let text = insertTexts.get(key);
  if (text === undefined) {
    let n = 0;
    const values = rows.map(() => `(${TELEMETRY_COLUMNS.map(() => (dialect === 'sqlite' ? '?' : `$${++n}`)).join(', ')})`);
    text = `insert into data_telemetry (${TELEMETRY_COLUMNS.join(', ')}) values ${values.join(', ')}`;
    insertTexts.set(key, text);
  }
  const parameters: unknown[] = [];
  for (const row of rows) for (const column of TELEMETRY_COLUMNS) parameters.push(row[column]);
  return CompiledQuery.raw(text, parameters);
}
