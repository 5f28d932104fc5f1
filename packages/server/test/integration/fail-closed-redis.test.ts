import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { buildNode, closeContext, openHome, type FleetwardNode } from '../../src/node.js';
import { connectDevice, deviceWithCertificate, refusal, type Connected, type DeviceCredentials } from '../helpers/devices.js';
import { call } from '../helpers/https-client.js';
import { ownRedis, type OwnRedis } from '../helpers/own-redis.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

/**
 * Rule 6, fail closed, in a cluster: with its Redis gone a node admits no new device (it could
 * not coordinate the session with the other nodes), reports not ready, and keeps its live
 * sessions for a bounded time; revocations still reach every node (they travel through the
 * database). When Redis is back — restarted empty — the same nodes admit again, fan out again and
 * close revoked devices everywhere, without a restart. The test stops and starts a Redis of its own.
 */

const admin = { name: 'operator:admin' };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Cluster {
  readonly redis: OwnRedis;
  readonly a: TestNode;
  readonly b: FleetwardNode;
  readonly mqttA: string;
  readonly mqttB: string;
  readonly apiA: string;
  readonly apiB: string;
  readonly caPem: string;
}

/** Two nodes on one data folder and database (the shared PostgreSQL) and a Redis of the test's own; `nodes: 1` starts only A. */
async function cluster(env: Readonly<Record<string, string>> = {}, nodes: 1 | 2 = 2): Promise<Cluster> {
  const redis = await ownRedis();
  cleanups.push(() => redis.cleanup());
  const settings = { FLEETWARD_REDIS_URL: redis.url, FLEETWARD_REDIS_KEY_PREFIX: `fwtest:fail-closed:${process.pid}-${randomBytes(3).toString('hex')}:`, ...env };
  const a = await startTestNode('postgres', { env: settings });
  cleanups.push(() => a.close());
  const { mqttUrl: mqttA, apiUrl: apiA } = await a.node.listen();
  if (nodes === 1) return { redis, a, b: a.node, mqttA, mqttB: mqttA, apiA, apiB: apiA, caPem: a.node.hierarchy.chainPem };
  const { context } = await openHome(a.env.config(settings), { create: false });
  const b = await buildNode(context).catch(async (error: unknown) => {
    await closeContext(context);
    throw error;
  });
  cleanups.push(() => b.close());
  const { mqttUrl: mqttB, apiUrl: apiB } = await b.listen();
  return { redis, a, b, mqttA, mqttB, apiA, apiB, caPem: a.node.hierarchy.chainPem };
}

function track(connected: Connected): Connected {
  cleanups.push(() => connected.client.endAsync(true));
  return connected;
}

/** How and when the server ends a live connection: the DISCONNECT reason code (null: closed without one). */
function closing(client: MqttClient): Promise<{ reasonCode: number | null; at: number }> {
  return new Promise((resolve) => {
    client.once('disconnect', (packet: { reasonCode?: number }) => resolve({ reasonCode: packet.reasonCode ?? null, at: Date.now() }));
    client.once('close', () => resolve({ reasonCode: null, at: Date.now() }));
  });
}

/** Connects, retrying while the node still refuses (it recovers by itself, within seconds). */
async function connectEventually(url: string, caPem: string, device: DeviceCredentials): Promise<Connected> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return track(await connectDevice(url, caPem, device, { clientId: device.name }));
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function readyStatus(c: Cluster, api: string): Promise<number> {
  return (await call(c.caPem, `${api}/readyz`)).status;
}

/** The audit events of one action, details parsed. */
async function audited(t: TestNode, action: string): Promise<{ outcome: string; target: string | null; details: Record<string, unknown> }[]> {
  const rows = await t.node.context.audit.list({ limit: 10_000, action });
  return rows.map((row) => ({ outcome: row.outcome, target: row.target, details: JSON.parse(row.details) as Record<string, unknown> }));
}

describe('fail closed when Redis is unavailable (two nodes, PostgreSQL)', () => {
  it('refuses new devices with 0x88 and is not ready while Redis is down, keeps live sessions, and recovers without a restart', async () => {
    const c = await cluster();
    const { context } = c.a.node;
    const [observer, doomed, sensor] = await Promise.all([deviceWithCertificate(context, 'observer-1'), deviceWithCertificate(context, 'meter-doomed'), deviceWithCertificate(context, 'sensor-1')]);
    await context.policies.create('observer', { version: '2026-11', statements: [
      { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
      { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/+/telemetry'] },
    ] }, admin);
    await context.policies.attach('observer', { kind: 'thing', name: 'observer-1' }, admin);
    const watcher = track(await connectDevice(c.mqttB, c.caPem, observer, { clientId: 'observer-1' }));
    await watcher.client.subscribeAsync('things/+/telemetry', { qos: 1 });
    const victim = track(await connectDevice(c.mqttB, c.caPem, doomed, { clientId: 'meter-doomed' }));

    await c.redis.stop();

    // Both nodes say why they cannot serve, so a load balancer takes them out of rotation.
    for (const api of [c.apiA, c.apiB]) await expect.poll(() => readyStatus(c, api), { timeout: 5_000 }).toBe(503);
    const notReady = await call(c.caPem, `${c.apiA}/readyz`);
    expect(notReady.body).toMatchObject({ code: 'FW_ERR_NOT_READY', checks: { redis: { ok: false }, store: { ok: true } } });
    expect(String((notReady.body.checks as { redis: { detail: string } }).redis.detail)).toMatch(/^Redis unreachable/);

    // No admission without the session store: MQTT 5 "Server unavailable", counted and audited.
    const refused = await refusal(connectDevice(c.mqttA, c.caPem, sensor, { clientId: 'sensor-1' }));
    expect(refused.code).toBe(0x88);
    const denied = (await audited(c.a, 'mqtt.connect')).filter((event) => event.outcome === 'denied');
    expect(denied.map((event) => event.details.reason)).toContain('cluster-unavailable');
    expect((await audited(c.a, 'mqtt.connect')).filter((event) => event.outcome === 'success' && event.details.clientId === 'sensor-1')).toEqual([]);
    const connects = await context.metrics.mqttConnects.get();
    expect(connects.values.find((v) => v.labels.outcome === 'denied' && v.labels.reason === 'cluster-unavailable')?.value).toBeGreaterThanOrEqual(1);

    // Revocation does not ride on Redis: revoked on A, the device's session on B closes at once.
    const victimClosed = closing(victim.client);
    const revokedAt = Date.now();
    await context.identity.certificates.revoke(doomed.serial, 'keyCompromise', admin);
    const revokedClose = await victimClosed;
    expect(revokedClose.reasonCode).toBe(0x98);
    expect(revokedClose.at - revokedAt).toBeLessThan(1_000);
    // The other live session is kept (the outage is shorter than the bound).
    expect(watcher.client.connected).toBe(true);

    await c.redis.start();
    // The same nodes, not restarted: they reconnect to the (empty) Redis and admit again.
    for (const api of [c.apiA, c.apiB]) await expect.poll(() => readyStatus(c, api), { timeout: 10_000 }).toBe(200);
    const device = await connectEventually(c.mqttA, c.caPem, sensor);
    expect(watcher.client.connected).toBe(true);

    // Fan-out between the nodes works again: a message published on A reaches B's subscriber.
    const received = new Promise<string>((resolve) => watcher.client.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
    await device.client.publishAsync('things/sensor-1/telemetry', 'after the outage', { qos: 1 });
    expect(await received).toBe('things/sensor-1/telemetry after the outage');

    // And a revocation on A closes the live session on B within a second.
    const watcherClosed = closing(watcher.client);
    const start = Date.now();
    await context.identity.certificates.revoke(observer.serial, 'keyCompromise', admin);
    const { reasonCode, at } = await watcherClosed;
    expect(reasonCode).toBe(0x98);
    expect(at - start).toBeLessThan(1_000);

    // Each node audits the outage it saw, once it is over: none outlasted the bound.
    console.log('DEBUG', JSON.stringify(await c.a.node.context.audit.list({ limit: 10000 }).then((r) => r.filter((e) => e.action.startsWith('health') || e.action==='node.start').map((e) => [e.ts, e.action, e.target, e.details]))));
    const recovered = async () => (await audited(c.a, 'health.dependency.recovered')).filter((event) => event.target === 'dependency:redis').map((event) => event.details);
    await expect.poll(recovered, { timeout: 5_000 }).toHaveLength(2);
    for (const details of await recovered()) expect(details).toMatchObject({ boundExceeded: false, sessionsClosed: 0 });
    expect((await context.audit.verify()).ok).toBe(true);
  }, 60_000);

  it('closes live sessions with 0x89 once Redis stays away longer than the bound, refuses new ones, and admits them again when it is back', async () => {
    const c = await cluster({ FLEETWARD_HEALTH_FAIL_CLOSED_GRACE_SECONDS: '2' }, 1);
    const { context } = c.a.node;
    const meter = await deviceWithCertificate(context, 'meter-1');
    const live = track(await connectDevice(c.mqttA, c.caPem, meter, { clientId: 'meter-1' }));
    const closed = closing(live.client);

    const stoppedAt = Date.now();
    await c.redis.stop();
    // Within the bound the session lives on.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + 1_000 - Date.now())));
    expect(live.client.connected).toBe(true);

    // Past it (2 s, noticed by a probe within one more second), it is closed: MQTT 5 "Server busy", come back later.
    const { reasonCode, at } = await closed;
    expect(reasonCode).toBe(0x89);
    expect(at - stoppedAt).toBeGreaterThanOrEqual(2_000);
    expect(at - stoppedAt).toBeLessThan(6_000);
    const disconnects = await context.metrics.failClosedDisconnects.get();
    expect(disconnects.values.find((v) => v.labels.dependency === 'redis')?.value).toBe(1);
    expect((await refusal(connectDevice(c.mqttA, c.caPem, meter, { clientId: 'meter-1' }))).code).toBe(0x88);
    const notReady = await call(c.caPem, `${c.apiA}/readyz`);
    expect(String((notReady.body.checks as { redis: { detail: string } }).redis.detail)).toMatch(/live sessions were closed after 2 s/);

    await c.redis.start();
    await connectEventually(c.mqttA, c.caPem, meter);
    await expect.poll(async () => (await audited(c.a, 'health.dependency.recovered')).map((event) => event.details), { timeout: 5_000 }).toEqual([
      expect.objectContaining({ boundExceeded: true, sessionsClosed: 1 }),
    ]);
    const closings = (await audited(c.a, 'mqtt.disconnect')).map((event) => event.details);
    expect(closings).toContainEqual(expect.objectContaining({ reason: 'Redis unreachable for more than 2 s', clientIds: ['meter-1'] }));
    expect((await context.audit.verify()).ok).toBe(true);
  }, 60_000);
});
