import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { buildNode, closeContext, openHome, type FleetwardNode } from '../../src/node.js';
import { connectDevice, deviceWithCertificate, type Connected } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

// Scale-out: two nodes on one machine share the database and a Redis (sessions, fan-out).

const REDIS_URL = process.env.FLEETWARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = { name: 'operator:admin' };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Cluster {
  readonly a: TestNode;
  readonly b: FleetwardNode;
  readonly urlA: string;
  readonly urlB: string;
  readonly caPem: string;
}

async function twoNodes(): Promise<Cluster> {
  const prefix = `fwtest:cluster:${process.pid}-${randomBytes(3).toString('hex')}:`;
  const env = { FLEETWARD_REDIS_URL: REDIS_URL, FLEETWARD_REDIS_KEY_PREFIX: prefix };
  const a = await startTestNode('postgres', { env });
  cleanups.push(async () => {
    await a.close();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.unlink(...keys);
    redis.disconnect();
  });
  const { mqttUrl: urlA } = await a.node.listen();
  // The second node: the same data folder and database, its own ports.
  const { context } = await openHome(a.env.config(env), { create: false });
  const b = await buildNode(context).catch(async (error: unknown) => {
    await closeContext(context);
    throw error;
  });
  cleanups.push(() => b.close());
  const { mqttUrl: urlB } = await b.listen();
  return { a, b, urlA, urlB, caPem: a.node.hierarchy.chainPem };
}

async function observerPolicy(c: Cluster, thing: string): Promise<void> {
  const { policies } = c.a.node.context;
  await policies.create('observer', { version: '2026-11', statements: [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/+/telemetry'] },
  ] }, admin);
  await policies.attach('observer', { kind: 'thing', name: thing }, admin);
}

function track(connected: Connected): Connected {
  cleanups.push(() => connected.client.endAsync(true));
  return connected;
}

describe('gateway scale-out over Redis (two nodes, PostgreSQL)', () => {
  it('a message published on node A reaches a subscriber on node B', async () => {
    const c = await twoNodes();
    const [sensor, observer] = await Promise.all([deviceWithCertificate(c.a.node.context, 'sensor-1'), deviceWithCertificate(c.a.node.context, 'observer-1')]);
    await observerPolicy(c, 'observer-1');
    const watcher = track(await connectDevice(c.urlB, c.caPem, observer, { clientId: 'observer-1' }));
    await watcher.client.subscribeAsync('things/+/telemetry', { qos: 1 });
    const received = new Promise<string>((resolve) => watcher.client.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
    const device = track(await connectDevice(c.urlA, c.caPem, sensor, { clientId: 'sensor-1' }));
    await device.client.publishAsync('things/sensor-1/telemetry', '21.5', { qos: 1 });
    expect(await received).toBe('things/sensor-1/telemetry 21.5');
  });

  it('a persistent QoS 1 session made on node A resumes on node B with what it missed', async () => {
    const c = await twoNodes();
    const [sensor, observer] = await Promise.all([deviceWithCertificate(c.a.node.context, 'sensor-1'), deviceWithCertificate(c.a.node.context, 'observer-1')]);
    await observerPolicy(c, 'observer-1');
    const persistent = { protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } };
    const first = await connectDevice(c.urlA, c.caPem, observer, { clientId: 'observer-1', ...persistent });
    await first.client.subscribeAsync('things/+/telemetry', { qos: 1 });
    await first.end();
    const device = track(await connectDevice(c.urlA, c.caPem, sensor, { clientId: 'sensor-1' }));
    await device.client.publishAsync('things/sensor-1/telemetry', 'while-away', { qos: 1 });

    const missed: string[] = [];
    const resumed = mqtt.connect(c.urlB, { ca: c.caPem, key: observer.keyPem, cert: observer.certPem, clientId: 'observer-1', reconnectPeriod: 0, resubscribe: false, ...persistent });
    cleanups.push(() => resumed.endAsync(true));
    resumed.on('message', (topic, payload) => missed.push(`${topic} ${payload.toString()}`));
    await expect.poll(() => missed, { timeout: 5_000 }).toEqual(['things/sensor-1/telemetry while-away']);
  });

  it('a revocation on node A closes the device connection on node B within a second', async () => {
    const c = await twoNodes();
    const sensor = await deviceWithCertificate(c.a.node.context, 'sensor-1');
    const device = track(await connectDevice(c.urlB, c.caPem, sensor, { clientId: 'sensor-1' }));
    const closed = new Promise<{ reasonCode: number | null; at: number }>((resolve) => {
      device.client.once('disconnect', (packet: { reasonCode?: number }) => resolve({ reasonCode: packet.reasonCode ?? null, at: Date.now() }));
      device.client.once('close', () => resolve({ reasonCode: null, at: Date.now() }));
    });
    const start = Date.now();
    await c.a.node.context.identity.certificates.revoke(sensor.serial, 'keyCompromise', admin);
    const { reasonCode, at } = await closed;
    expect(reasonCode).toBe(0x98);
    expect(at - start).toBeLessThan(1_000);
  });
});
