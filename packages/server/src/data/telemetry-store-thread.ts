import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import type { SqlStatement } from './telemetry-sql.js';

/**
 * The SQLite telemetry writer's thread (telemetry-writer-thread.ts starts it): its own connection
 * to the node's database file, so inserting rows and the commit's fsync run beside the event loop
 * that serves devices instead of on it. The statements come built (telemetry-sql.ts); one batch
 * per request, one transaction per batch.
 */
export interface WriteRequest {
  readonly id: number;
  /** One batch (telemetry-sql.ts), written in one transaction. */
  readonly statements: readonly SqlStatement[];
}

export type WriteReply = { readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly message: string; readonly code: string | null };

/** How long a batch waits for the node's own connection to release the write lock (this thread may block). */
const LOCK_WAIT_MS = 10_000;

const { file } = workerData as { readonly file: string };
const port = parentPort;
if (port === null) throw new Error('telemetry-store-thread runs as a worker thread');

const database = new SqliteDatabase(file);
database.pragma('journal_mode = WAL');
// As the node's connection: a committed batch survives a power cut.
database.pragma('synchronous = FULL');
database.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);

const statements = new Map<string, SqliteDatabase.Statement>();
const prepared = (text: string): SqliteDatabase.Statement => {
  let statement = statements.get(text);
  if (statement === undefined) {
    statement = database.prepare(text);
    statements.set(text, statement);
  }
  return statement;
};

const writeBatch = database.transaction((batch: readonly SqlStatement[]) => {
  for (const { text, parameters } of batch) prepared(text).run(...parameters);
});

port.on('message', (request: WriteRequest) => {
  let reply: WriteReply;
  try {
    // IMMEDIATE: take the write lock up front, as the node's own transactions do.
    writeBatch.immediate(request.statements);
    reply = { id: request.id, ok: true };
  } catch (error) {
    reply = { id: request.id, ok: false, message: error instanceof Error ? error.message : String(error), code: typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : null };
  }
  port.postMessage(reply);
});
