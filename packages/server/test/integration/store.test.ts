import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetwardError } from '@fleetward/protocol';
import { homeLayout } from '../../src/config/home.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/store.js';
import { TEST_DATABASE_URL } from '../helpers/database-url.js';
import { DIALECTS, testEnvironment, type TestEnvironment } from '../helpers/environment.js';
import { closedPort } from '../helpers/refusals.js';
import { openHome, closeContext } from '../../src/node.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function freshStore(env: TestEnvironment): Promise<Store> {
  const { context } = await openHome(env.config(), { create: true });
  cleanups.push(() => closeContext(context), () => env.cleanup());
  return context.store;
}

describe.each(DIALECTS)('store on %s', (dialect) => {
  it('migrates a new database and re-running migrations changes nothing', async () => {
    const env = await testEnvironment(dialect);
    const store = await freshStore(env);
    const applied = async () => (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db)).rows.map((r) => r.name);
    const first = await applied();
    expect(first[0]).toBe('0001_foundation');
    await migrateToLatest(store, env.config().database.schema);
    expect(await applied()).toEqual(first);
    const head = await store.db.selectFrom('audit_head').selectAll().execute();
    expect(head).toHaveLength(1);
  });

  it('refuses a database migrated by a newer Fleetward (FW_ERR_STORE_SCHEMA) and leaves it alone', async () => {
    const env = await testEnvironment(dialect);
    const store = await freshStore(env);
    const count = async () => Number((await sql<{ n: number }>`select count(*) as n from kysely_migration`.execute(store.db)).rows[0]?.n);
    const before = await count();
    await sql`insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(store.db);
    const error = await migrateToLatest(store, env.config().database.schema).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetwardError);
    expect((error as FleetwardError).code).toBe('FW_ERR_STORE_SCHEMA');
    expect(await count()).toBe(before + 1);
  });

  it('enforces foreign keys', async () => {
    const store = await freshStore(await testEnvironment(dialect));
    await expect(
      store.db.insertInto('api_tokens').values({ id: 'tok_x', operator_id: 'nobody', token_hash: 'h', scopes: '[]', created_at: 'x', expires_at: 'x', revoked_at: null, last_used_at: null }).execute(),
    ).rejects.toThrow();
  });

  it('answers ping', async () => {
    const store = await freshStore(await testEnvironment(dialect));
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

describe('store on SQLite', () => {
  it('uses WAL, foreign keys, full sync, and a 0600 database file', async () => {
    const env = await testEnvironment('sqlite');
    await freshStore(env);
    const file = homeLayout(env.home).databaseFile;
    const { statSync } = await import('node:fs');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });
});

describe('store on PostgreSQL', () => {
  it('an unreachable server is a clear FW_ERR_STORE_UNAVAILABLE naming where, without the password', async () => {
    const port = await closedPort();
    const error = await openStore({ kind: 'postgres', url: `postgres://fleet:hunter2@127.0.0.1:${port}/fleet`, schema: 'public', poolSize: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetwardError);
    expect((error as FleetwardError).code).toBe('FW_ERR_STORE_UNAVAILABLE');
    expect((error as FleetwardError).message).toContain(`127.0.0.1:${port}`);
    expect((error as FleetwardError).message).not.toContain('hunter2');
  });

  it('keeps each installation in its own schema', async () => {
    const a = await testEnvironment('postgres');
    const b = await testEnvironment('postgres');
    const storeA = await freshStore(a);
    const storeB = await freshStore(b);
    await storeA.db.insertInto('operators').values({ id: 'x', name: 'only-in-a', role: 'viewer', created_at: 'x', created_by: 'test', revoked_at: null }).execute();
    expect(await storeB.db.selectFrom('operators').select('name').where('name', '=', 'only-in-a').execute()).toEqual([]);
    expect(TEST_DATABASE_URL).toMatch(/^postgres/);
  });
});
