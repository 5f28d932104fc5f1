import { CompiledQuery } from 'kysely';
import { CommitPacer } from '../store/commit-pacer.js';
import type { Store } from '../store/store.js';
import type { StorageGroup } from './compiled-contract.js';
import { batchStatements, type SightingCount } from './telemetry-sql.js';
import { SqliteWriterThread } from './telemetry-writer-thread.js';

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
/**
 * Batches start at least this far apart unless a full batch is waiting: each one costs a commit
 * (a synced write) and, on SQLite, a hand-over to the writer thread, whatever it holds.
 */
const BATCH_INTERVAL_MS = 50;

export interface WriterOptions {
  /** Messages written per transaction. */
  readonly batchMessages: number;
  /** Messages waiting to be written before new data is refused (FW_ERR_DATA_BACKLOG). */
  readonly maxPendingMessages: number;
}

export const DEFAULT_WRITER_OPTIONS: WriterOptions = { batchMessages: 2_000, maxPendingMessages: 50_000 };

/**
 * Writes accepted telemetry in batches: messages queued while a batch is written go together in
 * the next transaction (group commit), so one fsync covers thousands of rows. Bounded: when the
 * store falls behind, `enqueue` says no and the ingest refuses data rather than growing memory.
 */
export class TelemetryWriter {
  readonly #store: Store;
  readonly #options: WriterOptions;
  readonly #onError: (error: unknown, lost: number) => void;
  /** SQLite: batches are written by a thread beside the event loop; PostgreSQL's driver is asynchronous already. */
  readonly #thread: SqliteWriterThread | null;
  #queue: TelemetryRecord[] = [];
  #sightings = new Map<string, { readonly kind: SightingKind; count: number; readonly firstMs: number; lastMs: number }>();
  #sightingTimer: NodeJS.Timeout | null = null;
  #draining: Promise<void> | null = null;
  readonly #pacer = new CommitPacer(BATCH_INTERVAL_MS);
  #written = 0;
  #lost = 0;
  #batches = 0;

  constructor(store: Store, options: WriterOptions, onError: (error: unknown, lost: number) => void) {
    this.#store = store;
    this.#options = options;
    this.#onError = onError;
    this.#thread = store.dialect === 'sqlite' ? new SqliteWriterThread(store.location) : null;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Messages written and lost, transactions (`batches`) that held them, messages still queued. */
  get stats(): { readonly written: number; readonly lost: number; readonly batches: number; readonly pending: number } {
    return { written: this.#written, lost: this.#lost, batches: this.#batches, pending: this.#queue.length };
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
    this.#draining = this.#nextBatchSlot().then(() => this.#drain()).finally(() => {
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
      this.#pacer.started();
      this.#batches += 1;
      try {
        await this.write(batch, sightings);
        this.#written += batch.length;
      } catch (error) {
        this.#lost += batch.length;
        this.#onError(error, batch.length);
      }
      if (this.#queue.length > 0 || this.#sightings.size > 0) await this.#nextBatchSlot();
    }
  }

  /** A full batch goes at once; a smaller one waits for the pacer, gathering what arrives meanwhile. */
  #nextBatchSlot(): Promise<void> {
    return this.#queue.length >= this.#options.batchMessages ? new Promise<void>((resolve) => setImmediate(resolve)) : this.#pacer.nextSlot();
  }

  /** Writes records and sightings in one transaction. */
  write(records: readonly TelemetryRecord[], sightings: readonly SightingCount[] = []): Promise<void> {
    if (this.#thread !== null) return this.#thread.write(records, sightings);
    return this.#store.db.transaction().execute(async (trx) => {
      for (const { text, parameters } of batchStatements(this.#store.dialect, records, sightings)) await trx.executeQuery(CompiledQuery.raw(text, [...parameters]));
    });
  }

  /** Writes what is queued, then ends the SQLite writer thread. */
  async close(): Promise<void> {
    await this.flush();
    await this.#thread?.close();
  }
}
