import { generateKeyPairSync } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseSealingKey, SEALED_ALG, sealJson, sealToRecipient, thingSealingInfo, type SealingKey, type SealingRecipient } from '@fleetward/protocol';
import { AuditLog } from '../../src/audit/audit-log.js';
import { runCli } from '../../src/cli/program.js';
import { resealDataKeys } from '../../src/data/data-keys.js';
import { openDataServices, type DataServices } from '../../src/data/data-services.js';
import { KeyRing } from '../../src/identity/key-ring.js';
import { initialize } from '../../src/node.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/store.js';
import { connectDevice, deviceWithCertificate, type Connected } from '../helpers/devices.js';
import { DIALECTS, testEnvironment, TestClock, type TestEnvironment } from '../helpers/environment.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

// Rule 9, sealed local storage: what a device sealed to the backend key is opened on ingest,
// before its data contract validates and minimizes it; what cannot be opened is refused whole.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };
const TOPIC = 'things/sensor-1/telemetry/fix';

const CONTRACT = {
  name: 'fix',
  version: 1,
  description: 'Position fixes, kept sealed on the device until upload',
  topic: 'things/${thing.name}/telemetry/fix',
  retention: 'P30D',
  schema: {
    type: 'object',
    required: ['temp'],
    properties: {
      temp: { type: 'number' },
      location: { type: 'object', required: ['lat', 'lon'], properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
      ssid: { type: 'string', maxLength: 32 },
    },
  },
  fields: {
    temp: { class: 'internal', purposes: ['monitoring'] },
    location: { class: 'personal', purposes: ['maintenance'], transform: { kind: 'round', decimals: 2 } },
    ssid: { class: 'personal', purposes: ['maintenance'], transform: { kind: 'pseudonymize', domain: 'wifi' } },
  },
};

const LOCATION = { lat: 52.520008, lon: 13.404954 };

/** A reading with its personal fields sealed on the device, bound to the thing that sends it. */
function sealedReading(recipient: SealingRecipient, thing = 'sensor-1'): Record<string, unknown> {
  return { temp: 21.5, location: sealJson(LOCATION, recipient, thingSealingInfo(thing)), ssid: sealJson('Müller-Home', recipient, thingSealingInfo(thing)) };
}

interface Setup {
  readonly t: TestNode;
  readonly device: Connected;
  readonly seen: string[];
  call(token: string, method: 'GET' | 'POST', url: string): Promise<{ status: number; body: Record<string, unknown> }>;
}

async function setup(): Promise<Setup> {
  const t = await startTestNode('sqlite', { env: { FLEETWARD_DATA_UNMATCHED_TOPICS: 'refuse' } });
  cleanups.push(() => t.close());
  const { mqttUrl } = await t.node.listen();
  const caPem = t.node.hierarchy.chainPem;
  const { context } = t.node;
  await context.data.contracts.apply([CONTRACT], admin);
  await context.data.refresh();
  await context.policies.create('observer', { version: '2026-11', statements: [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/+/telemetry/#'] },
  ] }, admin);
  const watcher = await deviceWithCertificate(context, 'observer-1');
  await context.policies.attach('observer', { kind: 'thing', name: 'observer-1' }, admin);
  const sensor = await deviceWithCertificate(context, 'sensor-1');
  await t.node.gateway.pollRegistry();
  const observer = await connectDevice(mqttUrl, caPem, watcher, { clientId: 'observer-1' });
  cleanups.push(() => observer.client.endAsync(true));
  await observer.client.subscribeAsync('things/+/telemetry/#', { qos: 1 });
  const seen: string[] = [];
  observer.client.on('message', (_topic, payload) => seen.push(payload.toString()));
  const device = await connectDevice(mqttUrl, caPem, sensor, { clientId: 'sensor-1' });
  cleanups.push(() => device.client.endAsync(true));
  const call = async (token: string, method: 'GET' | 'POST', url: string) => {
    const answer = await t.node.api.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
    return { status: answer.statusCode, body: answer.json<Record<string, unknown>>() };
  };
  return { t, device, seen, call };
}

async function publishOutcome(device: Connected, payload: unknown): Promise<number | 'ok'> {
  return device.client.publishAsync(TOPIC, JSON.stringify(payload), { qos: 1 }).then(
    () => 'ok' as const,
    (error: { code?: number }) => error.code ?? -1,
  );
}

describe('sealed values at ingest, over mutual-TLS MQTT 5 (rule 9)', () => {
  it('opens sealed fields before the contract: subscribers and storage see only the opened, minimized values', async () => {
    const s = await setup();
    const viewer = await s.t.operatorToken('vera', 'viewer');
    const shown = await s.call(viewer, 'GET', '/api/v1/data/sealing-key');
    expect(shown.status).toBe(200);
    const current = shown.body.current as SealingKey;
    expect(current).toMatchObject({ alg: SEALED_ALG, keyId: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(shown.body.keys).toEqual([{ ...current, generation: 1, createdAt: expect.any(String), active: true }]);

    expect(await publishOutcome(s.device, sealedReading(parseSealingKey(current)))).toBe('ok');
    await expect.poll(() => s.seen.length, { timeout: 2_000 }).toBe(1);
    const delivered = JSON.parse(s.seen[0] as string) as Record<string, unknown>;
    expect(delivered.temp).toBe(21.5);
    expect(delivered.location).toEqual({ lat: 52.52, lon: 13.4 });
    expect(delivered.ssid).toMatch(/^ps_/);
    expect(JSON.stringify(delivered)).not.toContain('$sealed');
    expect(JSON.stringify(delivered)).not.toContain('Müller');

    const { data } = s.t.node.context;
    await data.flush();
    const rows = (await data.access.query({ thing: 'sensor-1', purpose: 'maintenance' }, { actor: admin, role: 'admin' })).rows;
    expect(rows.map((r) => r.fields)).toEqual([{ location: { lat: 52.52, lon: 13.4 }, ssid: delivered.ssid }]);
    expect(data.ingest.countersOf('sensor-1')).toMatchObject({ accepted: 1, refused: 0 });
  });

  it('refuses the whole message (PUBACK 0x99) for a tampered envelope, a replay from another device, an unknown key, or a marker beside other members; counts it, stores and delivers nothing', async () => {
    const s = await setup();
    const recipient = parseSealingKey(await s.t.node.context.data.sealing.current());
    const good = sealedReading(recipient);
    const envelope = (good.location as { $sealed: Record<string, string> }).$sealed;
    const flipped = Buffer.from(envelope.ct as string, 'base64url');
    flipped[3] = (flipped[3] as number) ^ 0x20;
    const info = thingSealingInfo('sensor-1');
    const stranger = { keyId: 'feedfacefeedface', publicKey: generateKeyPairSync('x25519').publicKey };
    const deep = `${'{"a":'.repeat(16)}1${'}'.repeat(16)}`;
    const cases: [string, unknown, string][] = [
      ['a flipped ciphertext bit', { ...good, location: { $sealed: { ...envelope, ct: flipped.toString('base64url') } } }, 'sealed'],
      ['a relabelled key id', { ...good, location: { $sealed: { ...envelope, kid: 'feedfacefeedface' } } }, 'sealed'],
      ['a value sealed by another device', sealedReading(recipient, 'sensor-2'), 'sealed'],
      ['a key the backend never had', { ...good, ssid: sealJson('x', stranger, info) }, 'sealed'],
      ['a malformed envelope', { ...good, location: { $sealed: { ...envelope, extra: 1 } } }, 'sealed'],
      ['a marker beside other members', { ...good, location: { ...(good.location as object), lat: 1 } }, 'sealed'],
      ['more sealed values than one message may hold', { ...good, extra: Array.from({ length: 17 }, () => sealJson(1, recipient, info)) }, 'sealed'],
      // What was sealed passes the same bounds as a payload in clear, and then the contract.
      ['a sealed value with a duplicate key', { ...good, location: { $sealed: sealToRecipient(Buffer.from('{"lat":1,"lat":2,"lon":3}'), recipient, info) } }, 'duplicate-key'],
      ['a sealed value nesting the payload too deep', { ...good, location: { $sealed: sealToRecipient(Buffer.from(deep), recipient, info) } }, 'too-deep'],
      ['a sealed value the contract does not allow', { ...good, temp: sealJson('hot', recipient, info) }, 'schema'],
    ];
    for (const [what, payload] of cases) expect(await publishOutcome(s.device, payload), what).toBe(0x99);
    expect(s.device.client.connected).toBe(true);

    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(s.seen).toEqual([]);
    const { data } = s.t.node.context;
    await data.flush();
    expect((await data.access.query({ thing: 'sensor-1', purpose: 'maintenance' }, { actor: admin, role: 'admin' })).rows).toEqual([]);
    const byReason: Record<string, number> = {};
    for (const [, , reason] of cases) byReason[reason] = (byReason[reason] ?? 0) + 1;
    expect(data.ingest.countersOf('sensor-1')).toEqual({ accepted: 0, unclassified: 0, refused: cases.length, byReason });
    expect(await s.t.node.context.metrics.registry.getSingleMetricAsString('fleetward_data_messages_total')).toContain(`reason="sealed"} ${byReason.sealed}`);
    // The same reading, sealed properly, still goes through.
    expect(await publishOutcome(s.device, good)).toBe('ok');
  });

  it('rotation (admins only, audited): new values seal to the new key, and values sealed to the old key still open', async () => {
    const s = await setup();
    const [operatorToken, adminToken] = [await s.t.operatorToken('otto', 'operator'), await s.t.operatorToken('ada', 'admin')];
    const before = (await s.call(operatorToken, 'GET', '/api/v1/data/sealing-key')).body.current as SealingKey;
    const sealedBefore = sealedReading(parseSealingKey(before));

    expect(await s.call(operatorToken, 'POST', '/api/v1/data/sealing-key/rotate')).toMatchObject({ status: 403, body: { code: 'FW_ERR_FORBIDDEN' } });
    const rotated = await s.call(adminToken, 'POST', '/api/v1/data/sealing-key/rotate');
    expect(rotated).toMatchObject({ status: 200, body: { previous: before.keyId, active: { generation: 2, active: true } } });
    const after = (await s.call(operatorToken, 'GET', '/api/v1/data/sealing-key')).body;
    const current = after.current as SealingKey;
    expect(current.keyId).not.toBe(before.keyId);
    expect((after.keys as { keyId: string; active: boolean }[]).map((k) => [k.keyId, k.active])).toEqual([[current.keyId, true], [before.keyId, false]]);

    expect(await publishOutcome(s.device, sealedBefore)).toBe('ok');
    expect(await publishOutcome(s.device, sealedReading(parseSealingKey(current)))).toBe('ok');
    await expect.poll(() => s.seen.length, { timeout: 2_000 }).toBe(2);
    for (const seen of s.seen) expect(JSON.parse(seen)).toMatchObject({ temp: 21.5, location: { lat: 52.52, lon: 13.4 } });

    const audit = await s.t.node.context.audit.list({ limit: 10, action: 'data.sealing-key.rotate' });
    expect(audit.map((e) => [e.actor, e.target])).toEqual([
      ['node', `sealing-key:${before.keyId}`],
      ['operator:ada', `sealing-key:${current.keyId}`],
    ]);
  });
});

describe.each(DIALECTS)('backend sealing keys at rest on %s', (dialect) => {
  async function fresh(): Promise<{ store: Store; clock: TestClock; keyRing: KeyRing; open: (ring?: KeyRing) => Promise<DataServices> }> {
    const env = await testEnvironment(dialect);
    const config = env.config();
    await mkdir(env.home, { recursive: true, mode: 0o700 });
    const store = await openStore(config.database.url === null ? { kind: 'sqlite', file: join(env.home, 'fleetward.db') } : { kind: 'postgres', url: config.database.url, schema: config.database.schema, poolSize: 4 });
    await migrateToLatest(store, config.database.schema);
    const clock = new TestClock();
    const audit = new AuditLog(store, clock);
    const keyRing = KeyRing.generate(clock.now());
    cleanups.push(async () => {
      await audit.flush();
      await store.close();
      await env.cleanup();
    });
    return { store, clock, keyRing, open: (ring = keyRing) => openDataServices({ store, audit, clock, keyRing: ring }) };
  }

  it('are made once on first use (even by nodes racing), sealed under the key ring, and re-sealed by a KEK rotation', async () => {
    const { store, clock, keyRing, open } = await fresh();
    const [a, b] = [await open(), await open()];
    expect(await store.db.selectFrom('data_keys').select('name').where('name', 'like', 'sealing:%').execute()).toEqual([]);
    const [fromA, fromB] = await Promise.all([a.sealing.current(), b.sealing.current()]);
    expect(fromA).toEqual(fromB);
    const rows = await store.db.selectFrom('data_keys').selectAll().where('name', 'like', 'sealing:%').execute();
    expect(rows.map((r) => r.name)).toEqual(['sealing:1']);
    expect(rows[0]?.sealed).toMatch(/^fwseal1\./);

    const sealed = sealJson({ n: 1 }, parseSealingKey(fromA), thingSealingInfo('m1'));
    const rotated = keyRing.withNewActiveKey(clock.now());
    expect(await resealDataKeys(store.db, rotated)).toBe(3);
    const reopened = await open(rotated.withoutRetiredKeys());
    expect(await reopened.sealing.current()).toEqual(fromA);
    expect(reopened.sealing.lookup(fromA.keyId)).toBeDefined();
    const opened = reopened.ingest.inspect({ thing: 'm1', thingType: null, topic: 'x/m1', payload: Buffer.from(JSON.stringify(sealed)), receivedAtMs: clock.nowMs() });
    // No contract covers the topic; what matters here is that the key opened after the re-seal (no 'sealed' refusal).
    expect(opened).toMatchObject({ verdict: 'refuse', reason: 'no-contract' });
    await expect(open(KeyRing.generate(clock.now()))).rejects.toMatchObject({ code: 'FW_ERR_KEY_UNREADABLE' });
  });

  it('a key rotated on another node opens here after an unknown key id triggers a reload', async () => {
    const { clock, open } = await fresh();
    const [here, there] = [await open(), await open()];
    const first = await here.sealing.current();
    const { active } = await there.sealing.rotate(admin);
    expect(active.keyId).not.toBe(first.keyId);
    expect(here.sealing.lookup(active.keyId)).toBeUndefined();
    await vi.waitFor(() => expect(here.sealing.lookup(active.keyId)).toBeDefined());
    expect((await here.sealing.current()).keyId).toBe(active.keyId);
    expect(here.sealing.lookup(first.keyId)).toBeDefined();
    // Unknown key ids reload at most every 5 s, so a flood of bogus ids costs no more queries than that.
    const second = (await there.sealing.rotate(admin)).active;
    for (let i = 0; i < 100; i++) expect(here.sealing.lookup(i === 99 ? second.keyId : `bogus${i}`)).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(here.sealing.lookup(second.keyId)).toBeUndefined();
    clock.advance(5_000);
    expect(here.sealing.lookup(second.keyId)).toBeUndefined();
    await vi.waitFor(() => expect(here.sealing.lookup(second.keyId)).toBeDefined());
  });
});

describe('fleetward data sealing-key (CLI, local data folder)', () => {
  let env: TestEnvironment;
  const saved = { ...process.env };

  beforeAll(async () => {
    env = await testEnvironment('sqlite');
    for (const key of Object.keys(process.env)) if (key.startsWith('FLEETWARD_')) delete process.env[key];
    Object.assign(process.env, env.env);
    await initialize(env.config());
  });
  afterAll(async () => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    await env.cleanup();
  });

  async function fleetward(...args: string[]): Promise<{ code: number; stdout: string; json: unknown }> {
    let stdout = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    process.exitCode = undefined;
    try {
      const code = await runCli(['node', 'fleetward', ...args]);
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      return { code, stdout, json };
    } finally {
      process.exitCode = undefined;
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('shows the current key (made on first use), rotates it, and lists the old key as still opening', async () => {
    const shown = await fleetward('data', 'sealing-key', 'show', '--json');
    expect(shown.code).toBe(0);
    const first = (shown.json as { current: SealingKey }).current;
    expect(parseSealingKey(first).keyId).toBe(first.keyId);
    const rotated = await fleetward('data', 'sealing-key', 'rotate', '--json');
    expect(rotated).toMatchObject({ code: 0, json: { previous: first.keyId, active: { generation: 2, active: true } } });
    const text = await fleetward('data', 'sealing-key', 'show');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Current sealing key ${(rotated.json as { active: SealingKey }).active.keyId}`);
    expect(text.stdout).toMatch(new RegExp(`${first.keyId}\\s+1\\s+\\S+\\s+opens only`));
    expect((await fleetward('data', 'sealing-key', 'frobnicate')).code).toBe(2);
  });
});
