import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEED_START, feedHead, readFeed, type FeedPosition } from '../../src/data/data-webhook-feed.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/store.js';
import { DIALECTS, testEnvironment, type TestEnvironment } from '../helpers/environment.js';

// The feed data webhooks read the telemetry store through: a cursor into it must never be passed
// by a row that becomes visible later (migration 0016 says why each dialect needs care).

const COLUMNS = 'message_id, thing, thing_type, topic, contract, version, classification, fields, classes, received_at, expires_at';
const values = (message: string) => [message, 't-1', null, 'things/t-1/env', 'env', 1, 'internal', '{"temp":1}', '{"temp":"internal"}', '2026-11-25T12:00:00.000Z', '2026-12-25T12:00:00.000Z'];

describe.each(DIALECTS)('the telemetry feed on %s', (dialect) => {
  let env: TestEnvironment;
  let store: Store;

  const insert = async (...messages: string[]) => {
    for (const message of messages) await store.db.insertInto('data_telemetry').values({ message_id: message, thing: 't-1', thing_type: null, topic: 'things/t-1/env', contract: 'env', version: 1, classification: 'internal', fields: '{"temp":1}', classes: '{"temp":"internal"}', received_at: '2026-11-25T12:00:00.000Z', expires_at: '2026-12-25T12:00:00.000Z' }).execute();
  };
  const messagesAfter = async (position: FeedPosition) => (await readFeed(store, position, { limit: 100 })).map((r) => r.messageId);

  beforeAll(async () => {
    env = await testEnvironment(dialect);
    const config = env.config();
    await mkdir(env.home, { recursive: true, mode: 0o700 });
    store = await openStore(config.database.url === null ? { kind: 'sqlite', file: join(env.home, 'fleetward.db') } : { kind: 'postgres', url: config.database.url, schema: config.database.schema, poolSize: 4 });
    await migrateToLatest(store, config.database.schema);
  });
  afterAll(async () => {
    await store.close();
    await env.cleanup();
  });

  it('reads in order, and a row stored after the newest rows were erased still comes after the cursor', async () => {
    await insert('a', 'b', 'c');
    expect(await messagesAfter(FEED_START)).toEqual(['a', 'b', 'c']);
    const head = await feedHead(store);
    expect(await messagesAfter(head)).toEqual([]);
    // Erasure (or retention) takes the newest row: SQLite without AUTOINCREMENT would give its id to the next row.
    await store.db.deleteFrom('data_telemetry').where('message_id', '=', 'c').execute();
    await insert('d');
    expect(await messagesAfter(head)).toEqual(['d']);
    const rows = await readFeed(store, FEED_START, { limit: 100, through: head });
    expect(rows.map((r) => r.messageId)).toEqual(['a', 'b']);
  });

  it.runIf(dialect === 'postgres')('reads a transaction still in flight only once it is over, and never behind a cursor already past it', async () => {
    const { url, schema } = env.config().database;
    const connect = async () => {
      const client = new pg.Client({ connectionString: url ?? '', options: `-c search_path=${schema}` });
      await client.connect();
      return client;
    };
    const [slow, fast] = await Promise.all([connect(), connect()]);
    try {
      const start = await feedHead(store);
      // `slow` starts first and holds the lower transaction id; `fast` commits a row meanwhile.
      await slow.query('begin');
      await slow.query('select pg_current_xact_id()');
      await fast.query(`insert into data_telemetry (${COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, values('fast'));
      // `slow` writes after `fast`'s commit: its row gets the higher id, yet belongs before `fast`'s.
      await slow.query(`insert into data_telemetry (${COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, values('slow'));
      // While `slow` runs, nothing after it is read: a cursor moved past `fast` now would never see `slow`.
      expect(await messagesAfter(start)).toEqual([]);
      await slow.query('commit');
      expect(await messagesAfter(start)).toEqual(['slow', 'fast']);
      const rows = await readFeed(store, start, { limit: 100 });
      expect((rows[0]?.position.id ?? 0) > (rows[1]?.position.id ?? 0)).toBe(true);
      expect(await messagesAfter(rows[1]?.position ?? start)).toEqual([]);
      expect(await feedHead(store)).toEqual(rows[1]?.position);
    } finally {
      await slow.query('rollback').catch(() => undefined);
      await Promise.all([slow.end(), fast.end()]);
    }
  });
});
