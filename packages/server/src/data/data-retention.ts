import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';

export interface RetentionOptions {
  /** Rows deleted per statement (and per transaction). */
  readonly batchRows: number;
  /** Batches per run at most; what is left goes at the next run. */
  readonly maxBatchesPerRun: number;
}

export const DEFAULT_RETENTION_OPTIONS: RetentionOptions = { batchRows: 1_000, maxBatchesPerRun: 200 };

export interface RetentionReport {
  readonly rows: number;
  readonly vaultEntries: number;
  /** Rows deleted by `contract/class`. */
  readonly byContract: Readonly<Record<string, number>>;
  /** True when the run stopped at its batch bound with more to delete. */
  readonly more: boolean;
}

export interface PurgeReport {
  readonly thing: string;
  readonly rows: number;
  readonly vaultEntries: number;
}

export interface RetentionDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** Writes the telemetry still queued, so an erasure also covers what the thing sent just before it. */
  readonly flushWrites?: () => Promise<void>;
}

/**
 * Deletes what is past its retention, in bounded batches so a large backlog never holds a long
 * lock, and erases one thing's data on request (right to erasure). Both are audited with counts.
 */
export class DataRetention {
  readonly #deps: RetentionDependencies;
  readonly #options: RetentionOptions;

  constructor(deps: RetentionDependencies, options: Partial<RetentionOptions> = {}) {
    this.#deps = deps;
    this.#options = { ...DEFAULT_RETENTION_OPTIONS, ...options };
  }

  async run(actor: Actor = { name: 'node' }): Promise<RetentionReport> {
    const { db } = this.#deps.store;
    const now = this.#deps.clock.now().toISOString();
    const byContract: Record<string, number> = {};
    let rows = 0;
    let vaultEntries = 0;
    let batches = 0;
    let more = false;
    for (;;) {
      if (batches === this.#options.maxBatchesPerRun) {
        more = true;
        break;
      }
      batches += 1;
      const expired = await db.selectFrom('data_telemetry').select(['id', 'contract', 'classification']).where('expires_at', '<=', now).orderBy('expires_at').limit(this.#options.batchRows).execute();
      if (expired.length === 0) break;
      await db.deleteFrom('data_telemetry').where('id', 'in', expired.map((r) => r.id)).execute();
      for (const r of expired) byContract[`${r.contract}/${r.classification}`] = (byContract[`${r.contract}/${r.classification}`] ?? 0) + 1;
      rows += expired.length;
      if (expired.length < this.#options.batchRows) break;
    }
    for (;;) {
      if (batches >= this.#options.maxBatchesPerRun) {
        more = true;
        break;
      }
      batches += 1;
      const expired = await db.selectFrom('data_token_vault').select('token').where('expires_at', '<=', now).limit(this.#options.batchRows).execute();
      if (expired.length === 0) break;
      await db.deleteFrom('data_token_vault').where('token', 'in', expired.map((r) => r.token)).execute();
      vaultEntries += expired.length;
      if (expired.length < this.#options.batchRows) break;
    }
    if (rows + vaultEntries > 0) {
      await this.#deps.audit.record({ ...actorFields(actor), action: 'data.retention', outcome: 'success', details: { rows, vaultEntries, byContract, more, before: now } });
    }
    return { rows, vaultEntries, byContract, more };
  }

  /** Erases every stored row and vault entry of one thing, in one transaction, and proves it with the counts. */
  async purgeThing(thing: string, actor: Actor): Promise<PurgeReport> {
    // Before the transaction: the writer waits for the same write lock.
    await this.#deps.flushWrites?.();
    return this.#deps.store.db.transaction().execute(async (trx) => {
      const rows = Number((await trx.deleteFrom('data_telemetry').where('thing', '=', thing).executeTakeFirst()).numDeletedRows);
      const vaultEntries = Number((await trx.deleteFrom('data_token_vault').where('thing', '=', thing).executeTakeFirst()).numDeletedRows);
      const left = await trx.selectFrom('data_telemetry').select((eb) => eb.fn.countAll().as('n')).where('thing', '=', thing).executeTakeFirstOrThrow();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'data.purge', outcome: 'success', target: `thing:${thing}`, details: { rows, vaultEntries, remaining: Number(left.n) } }]);
      return { thing, rows, vaultEntries };
    });
  }
}
