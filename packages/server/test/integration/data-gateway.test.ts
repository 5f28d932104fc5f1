import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { connectDevice, deviceWithCertificate, type Connected } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

// Rule 9 end to end: real MQTT publishes through the gateway, judged and minimized by their data
// contract before fan-out and storage.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };

const CONTRACT = {
  name: 'env',
  version: 1,
  description: 'Environment readings',
  topic: 'things/${thing.name}/telemetry/env',
  retention: 'P30D',
  schema: {
    type: 'object',
    required: ['temp'],
    properties: {
      temp: { type: 'number', minimum: -40, maximum: 85 },
      mac: { type: 'string', maxLength: 17 },
      customer: { type: 'string', maxLength: 64 },
      location: { type: 'object', required: ['lat', 'lon'], properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
      debug: { type: 'string', maxLength: 256 },
    },
  },
  fields: {
    temp: { class: 'internal', purposes: ['monitoring'] },
    mac: { class: 'personal', purposes: ['maintenance'], transform: { kind: 'pseudonymize', domain: 'devices' } },
    customer: { class: 'sensitive', purposes: ['billing'], transform: 'tokenize' },
    location: { class: 'personal', purposes: ['maintenance'], retention: 'P7D', transform: { kind: 'round', decimals: 2 } },
    debug: { class: 'internal', purposes: ['support'], transform: 'drop' },
  },
};

const READING = { temp: 21.37, mac: 'a4:cf:12:9e:3b:07', customer: 'C-0042-7781', location: { lat: 52.520008, lon: 13.404954 }, debug: 'heap=81%' };

interface Setup {
  readonly t: TestNode;
  readonly url: string;
  readonly caPem: string;
  readonly observer: Connected;
  readonly seen: string[];
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
  await t.node.gateway.pollRegistry();
  const observer = await connectDevice(mqttUrl, caPem, watcher, { clientId: 'observer-1' });
  cleanups.push(() => observer.client.endAsync(true));
  await observer.client.subscribeAsync('things/+/telemetry/#', { qos: 1 });
  const seen: string[] = [];
  observer.client.on('message', (_topic, payload) => seen.push(payload.toString()));
  return { t, url: mqttUrl, caPem, observer, seen };
}

async function publishOutcome(device: Connected, topic: string, payload: string | Buffer): Promise<number | 'ok'> {
  return device.client.publishAsync(topic, payload, { qos: 1 }).then(
    () => 'ok' as const,
    (error: { code?: number }) => error.code ?? -1,
  );
}

describe('data contracts at the gateway (rule 9)', () => {
  it('minimizes an accepted message before subscribers and storage see it, and serves each purpose only its fields', async () => {
    const s = await setup();
    const sensor = await deviceWithCertificate(s.t.node.context, 'sensor-1');
    const device = await connectDevice(s.url, s.caPem, sensor, { clientId: 'sensor-1' });
    cleanups.push(() => device.client.endAsync(true));
    expect(await publishOutcome(device, 'things/sensor-1/telemetry/env', JSON.stringify(READING))).toBe('ok');
    await expect.poll(() => s.seen.length, { timeout: 2_000 }).toBe(1);

    const delivered = JSON.parse(s.seen[0] as string) as Record<string, unknown>;
    expect(delivered).not.toHaveProperty('debug');
    expect(delivered.temp).toBe(21.37);
    expect(delivered.location).toEqual({ lat: 52.52, lon: 13.4 });
    expect(delivered.mac).toMatch(/^ps_/);
    expect(delivered.customer).toMatch(/^tk_/);
    expect(JSON.stringify(delivered)).not.toContain('a4:cf:12');
    expect(JSON.stringify(delivered)).not.toContain('C-0042');

    // The same MAC gives the same pseudonym across messages.
    expect(await publishOutcome(device, 'things/sensor-1/telemetry/env', JSON.stringify({ ...READING, temp: 22 }))).toBe('ok');
    await expect.poll(() => s.seen.length, { timeout: 2_000 }).toBe(2);
    expect((JSON.parse(s.seen[1] as string) as { mac: string }).mac).toBe(delivered.mac);

    const { data } = s.t.node.context;
    await data.flush();
    const maintenance = await data.access.query({ thing: 'sensor-1', purpose: 'maintenance' }, { actor: admin, role: 'admin' });
    expect(maintenance.rows).toHaveLength(2);
    expect(Object.keys(maintenance.rows[0]?.fields ?? {}).sort()).toEqual(['location', 'mac']);
    expect(maintenance.withheld).toEqual(expect.arrayContaining(['temp', 'customer']));
    // Clearance by role: a viewer reads public fields only, an auditor internal ones too.
    const asViewer = await data.access.query({ thing: 'sensor-1', purpose: 'monitoring' }, { actor: admin, role: 'viewer' });
    expect(Object.keys(asViewer.rows[0]?.fields ?? {})).toEqual([]);
    expect(asViewer.withheld).toContain('temp');
    const asAuditor = await data.access.query({ thing: 'sensor-1', purpose: 'monitoring' }, { actor: admin, role: 'auditor' });
    expect(Object.keys(asAuditor.rows[0]?.fields ?? {})).toEqual(['temp']);
    expect(await s.t.node.context.audit.list({ limit: 10, action: 'data.read' })).toHaveLength(1); // the personal read, not the internal one

    const inventory = await data.inventory();
    expect(inventory.contracts.map((c) => c.contract)).toEqual(['env']);

    const purged = await data.retention.purgeThing('sensor-1', admin);
    expect(purged.rows).toBeGreaterThan(0);
    expect((await data.access.query({ thing: 'sensor-1', purpose: 'maintenance' }, { actor: admin, role: 'admin' })).rows).toEqual([]);
  });

  it('refuses bad data before fan-out (MQTT 5: PUBACK 0x99; no contract: 0x87), counts it, and neither stores nor delivers it', async () => {
    const s = await setup();
    const sensor = await deviceWithCertificate(s.t.node.context, 'sensor-1');
    const device = await connectDevice(s.url, s.caPem, sensor, { clientId: 'sensor-1' });
    cleanups.push(() => device.client.endAsync(true));
    const topic = 'things/sensor-1/telemetry/env';
    const deep = `${'{"a":'.repeat(200)}1${'}'.repeat(200)}`;
    const cases: [string, string | Buffer, number][] = [
      ['not JSON', 'temp=21', 0x99],
      ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 0x99],
      ['a schema violation', JSON.stringify({ temp: 'hot' }), 0x99],
      ['a value out of range', JSON.stringify({ temp: 500 }), 0x99],
      ['a missing required field', JSON.stringify({ mac: 'x' }), 0x99],
      ['an unknown field', JSON.stringify({ temp: 20, password: 'hunter2' }), 0x99],
      ['an oversized value', JSON.stringify({ temp: 20, debug: 'x'.repeat(10_000) }), 0x99],
      ['a deeply nested payload', deep, 0x99],
    ];
    for (const [what, payload, code] of cases) expect(await publishOutcome(device, topic, payload), what).toBe(code);
    expect(await publishOutcome(device, 'things/sensor-1/telemetry/unknown', JSON.stringify({ temp: 1 })), 'a topic without a contract').toBe(0x87);
    expect(device.client.connected).toBe(true);

    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(s.seen).toEqual([]);
    await s.t.node.context.data.flush();
    expect((await s.t.node.context.data.access.query({ thing: 'sensor-1', purpose: 'monitoring' }, { actor: admin, role: 'admin' })).rows).toEqual([]);
    const metric = await s.t.node.context.metrics.registry.getSingleMetricAsString('fleetward_data_messages_total');
    expect(metric).toMatch(/outcome="refused"/);
    const counters = s.t.node.context.data.ingest.countersOf('sensor-1');
    expect(counters).not.toBeNull();

    // MQTT 3.1.1 cannot say why: the connection is closed (MQTT-3.3.5-2), and nothing is delivered.
    const old = mqtt.connect(s.url, { ca: s.caPem, key: sensor.keyPem, cert: sensor.certPem, clientId: 'sensor-1', protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => old.endAsync(true));
    await new Promise((resolve) => old.once('connect', resolve));
    const closed = new Promise<void>((resolve) => old.once('close', () => resolve()));
    old.publish(topic, 'temp=21', { qos: 1 });
    await closed;
    expect(s.seen).toEqual([]);
  });
});
