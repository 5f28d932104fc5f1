import { sql, type Transaction } from 'kysely';
import type { StoreDialect } from './store.js';
import type { Tables } from './tables.js';

/**
 * Serializes a check-then-create across nodes for the rest of the transaction. On PostgreSQL a
 * transaction-scoped advisory lock; on SQLite every Fleetward transaction already holds the
 * database write lock (BEGIN IMMEDIATE), so nothing more is needed.
 */
export async function lockForTransaction(trx: Transaction<Tables>, dialect: StoreDialect, name: string): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${name}))`.execute(trx);
}
