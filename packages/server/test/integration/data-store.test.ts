import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { resealDataKeys } from '../../src/data/data-keys.js';
import { inventoryMarkdown } from '../../src/data/data-inventory.js';
import { openDataServices, type DataOptions, type DataServices } from '../../src/data/data-services.js';
import type { PublishInput } from '../../src/data/evaluate-publish.js';
import { KeyRing } from '../../src/identity/key-ring.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/store.js';
import { DIALECTS, testEnvironment, TestClock, type Dialect } from '../helpers/environment.js';

const alice = { name: 'operator:alice' };
const DAY = 86_400_000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Fixture {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: TestClock;
  readonly keyRing: KeyRing;
  readonly data: DataServices;
  reopen(keyRing?: KeyRing): Promise<DataServices>;
}

async function fresh(dialect: Dialect, options: DataOptions = {}): Promise<Fixture> {
  const env = await testEnvironment(dialect);
  const config = env.config();
  await mkdir(env.home, { recursive: true, mode: 0o700 });
  const store = await openStore(config.database.url === null ? { kind: 'sqlite', file: join(env.home, 'fleetward.db') } : { kind: 'postgres', url: config.database.url, schema: config.database.schema, poolSize: 4 });
  await migrateToLatest(store, config.database.schema);
  const clock = new TestClock();
  const audit = new AuditLog(store, clock);
  const keyRing = KeyRing.generate(clock.now());
  const opened: DataServices[] = [];
  const open = async (ring = keyRing) => {
    const services = await openDataServices({ store, audit, clock, keyRing: ring }, options);
    opened.push(services);
    return services;
  };
  const data = await open();
  cleanups.push(async () => {
    for (const s of opened) await s.close();
    await audit.flush();
    await store.close();
    await env.cleanup();
  });
  return { store, audit, clock, keyRing, data, reopen: open };
}

const CONTRACT = {
  name: 'meter-env',
  version: 1,
  topic: 'things/${thing.name}/telemetry/env',
  thingType: 'meter',
  retention: 'P30D',
  schema: {
    type: 'object',
    required: ['temp'],
    properties: {
      temp: { type: 'number', minimum: -40, maximum: 85 },
      mac: { type: 'string', maxLength: 17 },
      owner: { type: 'string', maxLength: 64 },
      location: { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
      diag: { type: 'string', maxLength: 100 },
    },
  },
  fields: {
    temp: { class: 'internal', purposes: ['monitoring'] },
    mac: { class: 'personal', purposes: ['maintenance'], transform: 'pseudonymize' },
    owner: { class: 'sensitive', purposes: ['billing'], retention: 'P365D', transform: 'tokenize' },
    location: { class: 'personal', purposes: ['maintenance'], retention: 7, transform: { kind: 'round', decimals: 2 } },
    diag: { class: 'internal', purposes: ['monitoring'], transform: 'drop' },
  },
};

const publish = (thing: string, payload: unknown, at: Date, topic = `things/${thing}/telemetry/env`): PublishInput => ({
  thing,
  thingType: 'meter',
  topic,
  payload: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)),
  receivedAtMs: at.getTime(),
});

const READING = { temp: 21.5, mac: 'AA:BB:CC:DD:EE:FF', owner: 'alice@example.com', location: { lat: 48.858_37, lon: 2.294_48 }, diag: 'verbose' };

async function count(store: Store, table: 'data_telemetry' | 'data_token_vault', thing?: string): Promise<number> {
  let query = store.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n'));
  if (thing !== undefined) query = query.where('thing', '=', thing);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

describe.each(DIALECTS)('data minimization on %s', (dialect) => {
  it('contracts are versioned and immutable; invalid ones change nothing; applying is audited', async () => {
    const { data, audit } = await fresh(dialect);
    expect(await data.contracts.apply([CONTRACT], alice)).toEqual([{ name: 'meter-env', version: 1, outcome: 'created' }]);
    expect(await data.contracts.apply([CONTRACT], alice)).toEqual([{ name: 'meter-env', version: 1, outcome: 'unchanged' }]);
    await expect(data.contracts.apply([{ ...CONTRACT, description: 'changed' }], alice)).rejects.toMatchObject({ code: 'FW_ERR_CONFLICT' });
    await data.contracts.apply([{ ...CONTRACT, version: 3 }], alice);
    await expect(data.contracts.apply([{ ...CONTRACT, version: 2 }], alice)).rejects.toMatchObject({ code: 'FW_ERR_CONFLICT' });
    // All or none: the valid second contract is not applied with an invalid one.
    await expect(data.contracts.apply([{ ...CONTRACT, name: 'other', topic: 'things/${thing.name}/x' }, { ...CONTRACT, name: 'bad', fields: { temp: { class: 'top-secret', purposes: ['x'] } } }], alice)).rejects.toMatchObject({ code: 'FW_ERR_DATA_CONTRACT_INVALID' });
    expect((await data.contracts.list()).map((c) => `${c.name}@${c.version}`)).toEqual(['meter-env@3']);
    expect((await data.contracts.get('meter-env')).versions).toEqual([3, 1]);
    const events = await audit.list({ limit: 10, action: 'data.contract.apply' });
    expect(events.map((e) => JSON.parse(e.details) as unknown)).toEqual([{ contracts: ['meter-env@1'] }, { contracts: ['meter-env@3'] }]);
  });

  it('ingest stores only the minimized payload, one row per retention with each field\'s class; bad payloads store nothing; counted per device', async () => {
    const { data, store, clock } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    const accepted = data.ingest.inspect(publish('m1', READING, clock.now()));
    expect(accepted.verdict).toBe('accept');
    if (accepted.verdict !== 'accept') return;
    const delivered = JSON.parse(accepted.payload.toString()) as Record<string, unknown>;
    expect(delivered).toMatchObject({ temp: 21.5, location: { lat: 48.86, lon: 2.29 } });
    expect(delivered.mac).toMatch(/^ps_/);
    expect(delivered.owner).toMatch(/^tk_/);
    expect(delivered).not.toHaveProperty('diag');
    for (const bad of ['not json', '{"temp":1,"temp":2}', JSON.stringify({ temp: 1, extra: true }), JSON.stringify({ temp: 999 }), '['.repeat(1000), '['.repeat(100_000)]) {
      expect(data.ingest.inspect(publish('m1', bad, clock.now()))).toMatchObject({ verdict: 'refuse', code: 'FW_ERR_PAYLOAD_REJECTED', reasonCode: 0x99 });
    }
    expect(data.ingest.inspect(publish('m1', READING, clock.now(), 'things/m1/telemetry/debug'))).toMatchObject({ verdict: 'refuse', code: 'FW_ERR_DATA_NO_CONTRACT', reasonCode: 0x87 });
    // Reserved topics are not application data.
    expect(data.ingest.inspect(publish('m1', 'x', clock.now(), '$fw/things/m1/metrics'))).toMatchObject({ verdict: 'accept', record: null });
    await data.flush();

    const rows = await store.db.selectFrom('data_telemetry').selectAll().execute();
    const described = rows.map((r) => [r.classification, Object.keys(JSON.parse(r.fields) as object).sort().join(','), (Date.parse(r.expires_at) - Date.parse(r.received_at)) / DAY, JSON.parse(r.classes) as unknown]);
    expect(described.sort((a, b) => Number(a[2]) - Number(b[2]))).toEqual([
      ['personal', 'location', 7, { location: 'personal' }],
      ['personal', 'mac,temp', 30, { temp: 'internal', mac: 'personal' }],
      ['sensitive', 'owner', 365, { owner: 'sensitive' }],
    ]);
    const stored = rows.map((r) => r.fields).join(' ');
    expect(stored).not.toMatch(/alice|AA:BB|verbose|48\.858/);
    const vault = await store.db.selectFrom('data_token_vault').selectAll().execute();
    expect(vault).toHaveLength(1);
    expect(vault[0]?.sealed_value).not.toContain('alice');
    expect(data.ingest.countersOf('m1')).toMatchObject({ accepted: 1, refused: 7, byReason: { 'not-json': 1, 'duplicate-key': 1, 'unknown-field': 1, 'value-too-large': 1, 'too-deep': 1, 'too-large': 1, 'no-contract': 1 } });
    const sightings = await store.db.selectFrom('data_unclassified').selectAll().execute();
    expect(sightings.map((s) => [s.thing_type, s.topic, s.outcome, Number(s.count)])).toEqual([['meter', 'things/${thing.name}/telemetry/debug', 'refused', 1]]);
  });

  it('pass-unclassified delivers data without a contract unchanged, stores none of it, and reports the topic', async () => {
    const { data, store, clock } = await fresh(dialect, { ingest: { unmatched: 'pass-unclassified' } });
    for (let i = 0; i < 3; i++) expect(data.ingest.inspect(publish(`m${i}`, 'raw', clock.now(), `things/m${i}/gps`))).toMatchObject({ verdict: 'accept', payload: Buffer.from('raw'), record: null });
    await data.flush();
    expect(await count(store, 'data_telemetry')).toBe(0);
    const inventory = await data.inventory();
    expect(inventory.unclassified).toMatchObject([{ thingType: 'meter', topic: 'things/${thing.name}/gps', outcome: 'passed', count: 3 }]);
  });

  it('counts and sightings stay exact when devices and topics interleave, and past the bound on counted devices', async () => {
    const { data, clock } = await fresh(dialect, { ingest: { unmatched: 'pass-unclassified', maxCountedThings: 2 } });
    const order = ['m1:gps', 'm1:gps', 'm2:gps', 'm1:gps', 'm1:power', 'm3:gps', 'm3:gps', 'm2:gps', 'm2:power'];
    for (const entry of order) {
      const [thing, level] = entry.split(':') as [string, string];
      expect(data.ingest.inspect(publish(thing, 'raw', clock.now(), `things/${thing}/${level}`)).verdict).toBe('accept');
    }
    // Two devices are counted at most: m1, counted first, was forgotten when m3 came.
    expect(data.ingest.countersOf('m1')).toBeNull();
    expect(data.ingest.countersOf('m2')).toMatchObject({ unclassified: 3 });
    expect(data.ingest.countersOf('m3')).toMatchObject({ unclassified: 2 });
    await data.flush();
    const { unclassified } = await data.inventory();
    expect(unclassified.map((s) => [s.topic, s.count]).sort()).toEqual([
      ['things/${thing.name}/gps', 7],
      ['things/${thing.name}/power', 2],
    ]);
  });

  it('a full backlog refuses data (0x97) instead of growing memory', async () => {
    const { data, clock } = await fresh(dialect, { writer: { maxPendingMessages: 1 } });
    await data.contracts.apply([CONTRACT], alice);
    expect(data.ingest.inspect(publish('m1', { temp: 1 }, clock.now())).verdict).toBe('accept');
    expect(data.ingest.inspect(publish('m1', { temp: 2 }, clock.now()))).toMatchObject({ verdict: 'refuse', code: 'FW_ERR_DATA_BACKLOG', reasonCode: 0x97 });
    await data.flush();
    expect(data.ingest.inspect(publish('m1', { temp: 3 }, clock.now())).verdict).toBe('accept');
  });

  it('a stream of accepted messages shares transactions (at least 50 ms apart), and nothing is lost', async () => {
    const { data, clock, store } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    // One message a millisecond for about 300 ms: without pacing, nearly every message would be its own transaction.
    for (let i = 0; i < 300; i++) {
      expect(data.ingest.inspect(publish('m1', READING, clock.now())).verdict).toBe('accept');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await data.flush();
    expect(data.writer.stats).toMatchObject({ written: 300, lost: 0, pending: 0 });
    expect(data.writer.stats.batches).toBeLessThan(30);
    expect(await count(store, 'data_telemetry', 'm1')).toBe(900);
  });

  it('full batches are written one after another without waiting for the pacing', async () => {
    const { data, clock, store } = await fresh(dialect, { writer: { batchMessages: 10 } });
    await data.contracts.apply([CONTRACT], alice);
    for (let i = 0; i < 100; i++) expect(data.ingest.inspect(publish('m1', READING, clock.now())).verdict).toBe('accept');
    const started = performance.now();
    await data.flush();
    // Ten full batches: paced, they would take at least 9 × 50 ms.
    expect(performance.now() - started).toBeLessThan(450);
    expect(data.writer.stats).toMatchObject({ written: 100, batches: 10 });
    expect(await count(store, 'data_telemetry', 'm1')).toBe(300);
  });

  it('queries need a purpose, return only fields declared for it within the clearance, and audit personal reads', async () => {
    const { data, audit, clock } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    data.ingest.inspect(publish('m1', READING, clock.now()));
    data.ingest.inspect(publish('m2', READING, clock.now()));
    await data.flush();
    const admin = { actor: alice, role: 'admin' } as const;
    await expect(data.access.query({ thing: 'm1', purpose: undefined }, admin)).rejects.toMatchObject({ code: 'FW_ERR_PURPOSE_REQUIRED' });
    await expect(data.access.query({ thing: 'm1', purpose: 'Bad Purpose' }, admin)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });

    const monitoring = await data.access.query({ thing: 'm1', purpose: 'monitoring' }, { actor: { name: 'operator:val' }, role: 'viewer' });
    // temp is internal: above a viewer's clearance (public).
    expect(monitoring.rows.map((r) => r.fields)).toEqual([{}]);
    expect(monitoring.withheld).toEqual(['location', 'mac', 'owner', 'temp']);
    expect((await data.access.query({ thing: 'm1', purpose: 'monitoring' }, { actor: { name: 'operator:aud' }, role: 'auditor' })).rows.map((r) => r.fields)).toEqual([{ temp: 21.5 }]);
    expect(await audit.list({ limit: 10, action: 'data.read' })).toEqual([]);

    const maintenance = await data.access.query({ thing: 'm1', purpose: 'maintenance' }, { actor: { name: 'operator:op' }, role: 'operator' });
    expect(maintenance.rows).toHaveLength(1);
    expect(maintenance.rows[0]?.fields).toEqual({ location: { lat: 48.86, lon: 2.29 }, mac: expect.stringMatching(/^ps_/) });
    // The operator's clearance is personal: the sensitive owner token stays withheld even for billing.
    expect((await data.access.query({ thing: 'm1', purpose: 'billing' }, { actor: { name: 'operator:op' }, role: 'operator' })).rows[0]?.fields).toEqual({});
    expect((await data.access.query({ thing: 'm1', purpose: 'billing' }, admin)).rows[0]?.fields).toEqual({ owner: expect.stringMatching(/^tk_/) });
    const reads = await audit.list({ limit: 10, action: 'data.read' });
    expect(reads.map((r) => [r.actor, r.target, JSON.parse(r.details) as unknown])).toEqual([
      ['operator:op', 'thing:m1', { purpose: 'maintenance', role: 'operator', messages: 1, fields: ['meter-env/mac', 'meter-env/location'], classes: ['personal'] }],
      ['operator:alice', 'thing:m1', { purpose: 'billing', role: 'admin', messages: 1, fields: ['meter-env/owner'], classes: ['sensitive'] }],
    ]);
    // Another thing's data never shows up.
    expect((await data.access.query({ thing: 'm3', purpose: 'maintenance' }, admin)).rows).toEqual([]);
  });

  it('detokenizing needs the grant and a declared purpose; every attempt is audited', async () => {
    const { data, audit, clock } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    const accepted = data.ingest.inspect(publish('m1', READING, clock.now()));
    if (accepted.verdict !== 'accept') throw new Error('refused');
    await data.flush();
    const token = (JSON.parse(accepted.payload.toString()) as { owner: string }).owner;
    for (const role of ['operator', 'auditor', 'viewer'] as const) {
      await expect(data.access.detokenize(token, 'billing', { actor: { name: `operator:${role}` }, role })).rejects.toMatchObject({ code: 'FW_ERR_FORBIDDEN' });
    }
    const admin = { actor: alice, role: 'admin' } as const;
    await expect(data.access.detokenize(token, undefined, admin)).rejects.toMatchObject({ code: 'FW_ERR_PURPOSE_REQUIRED' });
    await expect(data.access.detokenize(token, 'monitoring', admin)).rejects.toMatchObject({ code: 'FW_ERR_FORBIDDEN' });
    await expect(data.access.detokenize(`tk_${'A'.repeat(22)}`, 'billing', admin)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    expect(await data.access.detokenize(token, 'billing', admin)).toEqual({ token, value: 'alice@example.com', thing: 'm1', contract: 'meter-env', field: 'owner' });
    const denied = await audit.list({ limit: 10, action: 'access.denied' });
    expect(denied.map((e) => e.actor)).toEqual(['operator:operator', 'operator:auditor', 'operator:viewer']);
    const attempts = await audit.list({ limit: 10, action: 'data.detokenize' });
    expect(attempts.map((e) => e.outcome)).toEqual(['denied', 'failure', 'success']);
    expect(attempts.map((e) => e.details).join()).not.toContain('alice@');
  });

  it('retention deletes in bounded batches per contract and retention, audited with counts; purge erases one thing', async () => {
    const { data, audit, clock, store } = await fresh(dialect, { retention: { batchRows: 3 } });
    await data.contracts.apply([CONTRACT], alice);
    for (let i = 0; i < 5; i++) data.ingest.inspect(publish('m1', READING, clock.now()));
    data.ingest.inspect(publish('m2', READING, clock.now()));
    await data.flush();
    expect(await count(store, 'data_telemetry')).toBe(18);
    expect(await data.retention.run()).toEqual({ rows: 0, vaultEntries: 0, byContract: {}, more: false });
    clock.advance(8 * DAY);
    expect(await data.retention.run()).toEqual({ rows: 6, vaultEntries: 0, byContract: { 'meter-env/personal': 6 }, more: false });
    clock.advance(30 * DAY);
    expect(await data.retention.run()).toEqual({ rows: 6, vaultEntries: 0, byContract: { 'meter-env/personal': 6 }, more: false });
    const retained = await audit.list({ limit: 10, action: 'data.retention' });
    expect(retained.map((e) => (JSON.parse(e.details) as { rows: number }).rows)).toEqual([6, 6]);
    expect(await count(store, 'data_telemetry', 'm1')).toBe(5);
    expect(await count(store, 'data_token_vault')).toBe(2);

    expect(await data.retention.purgeThing('m1', alice)).toEqual({ thing: 'm1', rows: 5, vaultEntries: 1 });
    expect(await count(store, 'data_telemetry', 'm1')).toBe(0);
    expect(await count(store, 'data_telemetry', 'm2')).toBe(1);
    const purge = await audit.list({ limit: 10, action: 'data.purge' });
    expect(purge.map((e) => [e.actor, e.target, JSON.parse(e.details) as unknown])).toEqual([['operator:alice', 'thing:m1', { rows: 5, vaultEntries: 1, remaining: 0 }]]);
    clock.advance(400 * DAY);
    expect(await data.retention.run()).toMatchObject({ rows: 1, vaultEntries: 1 });
    expect(await audit.verify()).toMatchObject({ ok: true });
  });

  it('an erasure right after ingest also erases what was still queued for storage', async () => {
    const { data, clock, store } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    for (let i = 0; i < 4; i++) expect(data.ingest.inspect(publish('m1', READING, clock.now())).verdict).toBe('accept');
    // No flush: the rows are still queued (SQLite: in the writer thread's next batch).
    expect(await data.retention.purgeThing('m1', alice)).toMatchObject({ thing: 'm1', rows: 12 });
    await data.flush();
    expect(await count(store, 'data_telemetry', 'm1')).toBe(0);
    expect(await count(store, 'data_token_vault', 'm1')).toBe(0);
  });

  it('a batch the store refuses is counted lost, written by nothing, and the next batch is stored', async () => {
    const { data, clock, store } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    const accepted = data.ingest.inspect(publish('m1', READING, clock.now()));
    if (accepted.verdict !== 'accept' || accepted.record === null) throw new Error('the reading was not accepted');
    await data.flush();
    // The same message id and a NULL thing: the database refuses the whole batch.
    const broken = { ...accepted.record, thing: null as unknown as string };
    await expect(data.writer.write([accepted.record, broken])).rejects.toThrow(/NOT NULL|null value/i);
    expect(await count(store, 'data_telemetry')).toBe(3);
    data.writer.enqueue(broken);
    await data.flush();
    expect(data.writer.stats).toMatchObject({ lost: 1 });
    expect(data.ingest.inspect(publish('m1', READING, clock.now())).verdict).toBe('accept');
    await data.flush();
    expect(await count(store, 'data_telemetry')).toBe(6);
  });

  it.runIf(dialect === 'sqlite')('the SQLite writer thread waits for the node’s own write lock instead of losing the batch', async () => {
    const { data, clock, store } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    // The node's connection holds the write lock (BEGIN IMMEDIATE) while the thread tries to commit.
    const transaction = store.db.transaction().execute(async (trx) => {
      await trx.updateTable('data_unclassified').set({ count: 0 }).where('topic', '=', 'none').execute();
      await held;
    });
    data.ingest.inspect(publish('m1', READING, clock.now()));
    const flushed = data.flush();
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    await transaction;
    await flushed;
    expect(data.writer.stats).toMatchObject({ written: 1, lost: 0 });
    expect(await count(store, 'data_telemetry', 'm1')).toBe(3);
  });

  it('keys are sealed at rest, survive a restart, and are re-sealed by a KEK rotation', async () => {
    const fixture = await fresh(dialect);
    const { data, store, clock, keyRing } = fixture;
    await data.contracts.apply([CONTRACT], alice);
    const first = data.ingest.inspect(publish('m1', READING, clock.now()));
    const keys = await store.db.selectFrom('data_keys').selectAll().orderBy('name').execute();
    expect(keys.map((k) => k.name)).toEqual(['pseudonym', 'vault']);
    for (const k of keys) expect(k.sealed).toMatch(/^fwseal1\./);
    const again = (await fixture.reopen()).ingest.inspect(publish('m1', READING, clock.now()));
    const pseudonym = (v: typeof first) => (v.verdict === 'accept' ? (JSON.parse(v.payload.toString()) as { mac: string }).mac : null);
    expect(pseudonym(again)).toBe(pseudonym(first));
    const rotated = keyRing.withNewActiveKey(clock.now());
    expect(await resealDataKeys(store.db, rotated)).toBe(2);
    const afterRotation = (await fixture.reopen(rotated.withoutRetiredKeys())).ingest.inspect(publish('m1', READING, clock.now()));
    expect(pseudonym(afterRotation)).toBe(pseudonym(first));
    await expect(fixture.reopen(KeyRing.generate(clock.now()))).rejects.toMatchObject({ code: 'FW_ERR_KEY_UNREADABLE' });
  });

  it('the inventory lists fields with class, purposes, transform, retention, storage and readers, and fields nobody reads', async () => {
    const { data, clock } = await fresh(dialect);
    await data.contracts.apply([CONTRACT], alice);
    data.ingest.inspect(publish('m1', READING, clock.now()));
    await data.flush();
    await data.access.query({ thing: 'm1', purpose: 'monitoring' }, { actor: alice, role: 'admin' });
    const inventory = await data.inventory(30);
    expect(inventory.contracts).toHaveLength(1);
    const fields = Object.fromEntries(inventory.contracts[0]?.fields.map((f) => [f.path, f]) ?? []);
    expect(fields.owner).toMatchObject({ classification: 'sensitive', purposes: ['billing'], transform: 'tokenize', retention: '365 d', storage: expect.stringContaining('token vault') });
    expect(fields.owner?.readers).toEqual(expect.arrayContaining(['role admin (query, for a declared purpose)', 'original value: roles admin (detokenize, audited)']));
    expect(fields.owner?.readers.join()).not.toContain('role viewer');
    expect(fields.diag).toMatchObject({ transform: 'drop', storage: 'not stored, not delivered', readers: [] });
    expect(inventory.unread.map((u) => u.field).sort()).toEqual(['location', 'mac', 'owner']);
    clock.advance(31 * DAY);
    expect((await data.inventory(30)).unread.map((u) => u.field).sort()).toEqual(['location', 'mac', 'owner', 'temp']);
    const markdown = inventoryMarkdown(inventory);
    expect(markdown).toContain('## meter — `things/${thing.name}/telemetry/env`');
    expect(markdown).toContain('| `owner` | sensitive | billing | tokenize | 365 d |');
  });
});
