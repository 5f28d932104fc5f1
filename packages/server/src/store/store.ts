import { chmod, open } from 'node:fs/promises';
import SqliteDatabase from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type Driver, type SqliteDialectConfig as SqliteConfig } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import { redactUrlPassword } from '../config/values.js';
import { migrationProvider } from './migrations/index.js';
import type { Tables } from './tables.js';

export type StoreDialect = 'sqlite' | 'postgres';
export type Database = Kysely<Tables>;

/** The node's database: Kysely over better-sqlite3 (embedded default) or pg (PostgreSQL). */
export interface Store {
  readonly db: Database;
  readonly dialect: StoreDialect;
  /** Where the data lives, with any password hidden. */
  readonly location: string;
  /** Resolves when the database answers a trivial query within the timeout. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export type StoreOptions =
  | { readonly kind: 'sqlite'; readonly file: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema: string; readonly poolSize: number; readonly onPoolError?: (error: Error) => void };

export async function openStore(options: StoreOptions): Promise<Store> {
  return options.kind === 'sqlite' ? openSqlite(options.file) : openPostgres(options);
}

/** How long a SQLite statement waits for another process's write lock before giving up. */
const SQLITE_LOCK_WAIT_MS = 5000;

/**
 * Kysely's SQLite driver, with two changes. Transactions begin IMMEDIATE: every Fleetward
 * transaction writes, and a deferred one that reads first cannot always upgrade to the write
 * lock when another process (the CLI beside a running node) wrote meanwhile. And a statement
 * that finds the database locked waits asynchronously and retries: better-sqlite3's own
 * busy_timeout waits synchronously, which would freeze the node's event loop for as long as
 * another process holds the lock.
 */
class NonBlockingSqliteDriver extends SqliteDriver {
  #connection: DatabaseConnection | undefined;

  override async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await super.acquireConnection();
    this.#connection ??= {
      executeQuery: (query) => retryWhileLocked(() => inner.executeQuery(query)),
      streamQuery: (query, chunkSize) => inner.streamQuery(query, chunkSize),
    };
    return this.#connection;
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

async function retryWhileLocked<T>(run: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + SQLITE_LOCK_WAIT_MS;
  for (let delay = 1; ; delay = Math.min(delay * 2, 25)) {
    try {
      return await run();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

class NonBlockingSqliteDialect extends SqliteDialect {
  readonly #database: SqliteConfig['database'];
  constructor(database: SqliteDatabase.Database) {
    const cached = withStatementCache(database);
    super({ database: cached });
    this.#database = cached;
  }
  override createDriver(): Driver {
    return new NonBlockingSqliteDriver({ database: this.#database });
  }
}

/** Distinct statements kept compiled; Fleetward runs a few hundred kinds of query over and over. */
const STATEMENT_CACHE_SIZE = 1000;

/**
 * Kysely asks better-sqlite3 to compile every query it runs, which costs more than running most
 * of them; compiled statements are kept and reused (least recently compiled dropped first).
 * Nothing streams (a statement mid-iteration could not be reused).
 */
function withStatementCache(database: SqliteDatabase.Database): SqliteConfig['database'] {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => database.close(),
    prepare: (query: string) => {
      let statement = cache.get(query);
      if (statement === undefined) {
        statement = database.prepare(query);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
        cache.set(query, statement);
      }
      return statement;
    },
  };
}

async function openSqlite(file: string): Promise<Store> {
  // Created 0600 before SQLite opens it (its -wal and -shm files take the same mode), and
  // tightened if it already existed with a looser one.
  await (await open(file, 'a', 0o600)).close();
  await chmod(file, 0o600);
  let database: SqliteDatabase.Database;
  try {
    database = new SqliteDatabase(file);
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    // Lock waits happen asynchronously in NonBlockingSqliteDriver, never inside SQLite.
    database.pragma('busy_timeout = 0');
    // FULL: a committed transaction (an acknowledged audit event) survives a power cut.
    database.pragma('synchronous = FULL');
  } catch (error) {
    throw new FleetwardError('FW_ERR_STORE_UNAVAILABLE', `cannot open SQLite database ${file}: ${(error as Error).message}`, { location: file }, { cause: error });
  }
  const db = new Kysely<Tables>({ dialect: new NonBlockingSqliteDialect(database) });
  return {
    db,
    dialect: 'sqlite',
    location: file,
    ping: (timeoutMs = 1000) => withTimeout(sql`select 1`.execute(db).then(() => undefined), timeoutMs, file),
    close: () => db.destroy(),
  };
}

async function openPostgres(options: Extract<StoreOptions, { kind: 'postgres' }>): Promise<Store> {
  // pg is loaded only when PostgreSQL is configured.
  const { default: pg } = await import('pg');
  const location = `${redactUrlPassword(options.url)} (schema ${options.schema})`;
  // pg hands back int8 (count(), bigint ids) as strings; Fleetward's int8 values fit in 2^53.
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, Number);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    options: `-c search_path=${options.schema}`,
    types,
  });
  // A client whose server goes away emits 'error'. pg-pool listens only while the client is idle
  // (then re-emitting on the pool); a client in use would throw an uncaught exception and end the
  // node. Its query fails on its own and the pool discards it, so the event only needs reporting.
  pool.on('error', (error) => options.onPoolError?.(error));
  pool.on('connect', (client) => client.on('error', (error) => options.onPoolError?.(error)));
  try {
    const client = await pool.connect();
    try {
      await client.query(`create schema if not exists "${options.schema}"`);
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new FleetwardError('FW_ERR_STORE_UNAVAILABLE', `cannot reach PostgreSQL at ${location}: ${describeError(error)}`, { location }, { cause: error });
  }
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    location,
    ping: (timeoutMs = 1000) => withTimeout(sql`select 1`.execute(db).then(() => undefined), timeoutMs, location),
    close: () => db.destroy(),
  };
}

/** Brings the schema to the newest migration this code knows; refuses a database from a newer Fleetward. */
export async function migrateToLatest(store: Store, schema: string): Promise<void> {
  const migrator = new Migrator({
    db: store.db,
    provider: migrationProvider(store.dialect),
    ...(store.dialect === 'postgres' ? { migrationTableSchema: schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error === undefined) return;
  const message = describeError(error);
  if (/missing/i.test(message)) {
    throw new FleetwardError('FW_ERR_STORE_SCHEMA', `the database at ${store.location} was migrated by a newer Fleetward: ${message}`, { location: store.location });
  }
  const failed = results?.find((r) => r.status === 'Error')?.migrationName;
  throw toStoreError(error, store.location, failed ? `migration ${failed} failed` : 'migration failed');
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '08006', '08001', '08003', 'SQLITE_BUSY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR']);

/** True when an error means the database could not be reached (rather than a bad query). */
export function isStoreUnavailable(error: unknown): boolean {
  if (error instanceof FleetwardError) return error.code === 'FW_ERR_STORE_UNAVAILABLE';
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|database is locked|timed out after/i.test(message);
}

export function toStoreError(error: unknown, location: string, context: string): FleetwardError {
  if (error instanceof FleetwardError) return error;
  if (isStoreUnavailable(error)) {
    return new FleetwardError('FW_ERR_STORE_UNAVAILABLE', `database ${location} unavailable (${context}): ${describeError(error)}`, { location }, { cause: error });
  }
  return new FleetwardError('FW_ERR_INTERNAL', `database error (${context}): ${describeError(error)}`, {}, { cause: error });
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(describeError).join('; ');
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string') return error.message || 'unknown error';
    return error.message.includes(code) ? error.message : `${error.message} (${code})`.trim();
  }
  return String(error);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, location: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FleetwardError('FW_ERR_STORE_UNAVAILABLE', `database ${location} did not answer within ${ms} ms`, { location })), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } catch (error) {
    throw toStoreError(error, location, 'ping');
  } finally {
    clearTimeout(timer);
  }
}
