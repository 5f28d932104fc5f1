import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { connectDevice, deviceWithCertificate, refusal, type Connected } from '../helpers/devices.js';
import { refusalCode } from '../helpers/refusals.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function limitedGateway(limits: Record<string, string>): Promise<{ t: TestNode; mqttUrl: string; caPem: string }> {
  const t = await startTestNode('sqlite', { env: { FLEETWARD_LIMITS_AUDIT_INTERVAL_MS: '1000', ...limits } });
  cleanups.push(() => t.close());
  const { mqttUrl } = await t.node.listen();
  return { t, mqttUrl, caPem: t.node.hierarchy.chainPem };
}

function closedWith(connected: Connected): Promise<number | null> {
  return new Promise((resolve) => {
    connected.client.once('disconnect', (packet: { reasonCode?: number }) => resolve(packet.reasonCode ?? null));
    connected.client.once('close', () => resolve(null));
  });
}

async function throttledAudit(t: TestNode): Promise<Record<string, number>> {
  const events = await t.node.context.audit.list({ limit: 50, action: 'mqtt.throttled' });
  const counts: Record<string, number> = {};
  for (const event of events) for (const [reason, n] of Object.entries((JSON.parse(event.details) as { counts: Record<string, number> }).counts)) counts[reason] = (counts[reason] ?? 0) + n;
  return counts;
}

describe('device limits at the gateway', () => {
  it('a device over its message rate gets PUBACK 0x97, then DISCONNECT 0x96 if it keeps on; counted and audited as one summary', async () => {
    const g = await limitedGateway({ FLEETWARD_LIMITS_MESSAGES_PER_SECOND: '1', FLEETWARD_LIMITS_MESSAGE_BURST: '3', FLEETWARD_LIMITS_RATE_DISCONNECT_AFTER_REFUSALS: '3' });
    const sensor = await deviceWithCertificate(g.t.node.context, 'sensor-1');
    const device = await connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1' });
    // Forced: the refused messages stay in flight on the client side, which a graceful end waits for.
    cleanups.push(() => device.client.endAsync(true));
    const closed = closedWith(device);
    const outcomes: (number | 'ok')[] = [];
    let gone = false;
    const closing = closed.then((code) => {
      gone = true;
      return code;
    });
    for (let i = 0; i < 8 && !gone; i++) {
      const published = device.client.publishAsync('things/sensor-1/telemetry', `m${i}`, { qos: 1 }).then(() => 'ok' as const, (error: { code?: number }) => error.code ?? -1);
      outcomes.push(await Promise.race([published, closing.then(() => -1)]));
    }
    expect(outcomes.slice(0, 6)).toEqual(['ok', 'ok', 'ok', 0x97, 0x97, 0x97]);
    expect(await closing).toBe(0x96);
    // Another device is not affected by sensor-1's flood.
    const other = await connectDevice(g.mqttUrl, g.caPem, await deviceWithCertificate(g.t.node.context, 'sensor-2'), { clientId: 'sensor-2' });
    cleanups.push(() => other.end().catch(() => undefined));
    await other.client.publishAsync('things/sensor-2/telemetry', 'fine', { qos: 1 });

    await expect.poll(() => throttledAudit(g.t), { timeout: 3_000, interval: 100 }).toMatchObject({ 'message-rate': 3, 'rate-disconnect': 1 });
    const metric = await g.t.node.context.metrics.registry.getSingleMetricAsString('fleetward_mqtt_throttled_total');
    expect(metric).toMatch(/reason="message-rate"\} 3$/m);
  });

  it('a flapping device (connect, disconnect, again: 3 times within the window) is banned for a while with CONNACK 0x8A (3.1.1: 5)', async () => {
    const g = await limitedGateway({ FLEETWARD_LIMITS_FLAPPING_MAX_CONNECTS: '3', FLEETWARD_LIMITS_CONNECT_BURST_PER_THING: '10', FLEETWARD_LIMITS_CONNECTS_PER_MINUTE_PER_THING: '600' });
    const sensor = await deviceWithCertificate(g.t.node.context, 'sensor-1');
    for (let i = 0; i < 2; i++) await (await connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1' })).end();
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1' }))).code).toBe(0x8a);
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1', protocolVersion: 4 }))).code).toBe(5);
    expect(g.t.node.gateway.throttle.bans(Date.now())).toEqual([expect.objectContaining({ target: { kind: 'thing', value: 'sensor-1' }, reason: 'flapping' })]);
    // Another thing connects as usual.
    await (await connectDevice(g.mqttUrl, g.caPem, await deviceWithCertificate(g.t.node.context, 'sensor-2'), { clientId: 'sensor-2' })).end();
    await expect.poll(() => throttledAudit(g.t), { timeout: 3_000, interval: 100 }).toMatchObject({ flapping: 2 });
  });

  it('a source flooding TLS handshakes is cut off before TLS; a device on another address still connects', async () => {
    const g = await limitedGateway({ FLEETWARD_LIMITS_HANDSHAKE_BURST_PER_SOURCE: '3', FLEETWARD_LIMITS_HANDSHAKES_PER_MINUTE_PER_SOURCE: '1', FLEETWARD_LIMITS_HANDSHAKE_MAX_DELAY_MS: '0' });
    const url = new URL(g.mqttUrl);
    const handshake = () =>
      new Promise<'tls' | 'cut'>((resolve) => {
        const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: g.caPem, servername: 'localhost' });
        socket.once('secureConnect', () => {
          socket.destroy();
          resolve('tls');
        });
        socket.once('error', () => resolve('cut'));
      });
    const results: string[] = [];
    for (let i = 0; i < 6; i++) results.push(await handshake());
    expect(results.filter((r) => r === 'cut').length).toBeGreaterThanOrEqual(3);
    expect(g.t.node.gateway.throttle.stats().handshakes.refused).toBeGreaterThanOrEqual(3);

    const sensor = await deviceWithCertificate(g.t.node.context, 'sensor-1');
    const device = await connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1', localAddress: '127.0.0.2' } as Parameters<typeof connectDevice>[3]);
    expect(device.client.connected).toBe(true);
    await device.end();
  });

  it('a device over its subscription limit gets SUBACK 0x97 for the extra filter and keeps the others', async () => {
    const g = await limitedGateway({ FLEETWARD_LIMITS_MAX_SUBSCRIPTIONS_PER_THING: '2' });
    const device = await connectDevice(g.mqttUrl, g.caPem, await deviceWithCertificate(g.t.node.context, 'sensor-1'), { clientId: 'sensor-1' });
    cleanups.push(() => device.end().catch(() => undefined));
    const granted = await device.client.subscribeAsync(['things/sensor-1/a', 'things/sensor-1/b', 'things/sensor-1/c'], { qos: 1 }).then(
      (subs) => subs.map((s) => s.qos),
      (error: { packet?: { granted: number[] } }) => error.packet?.granted ?? [],
    );
    expect(granted).toEqual([1, 1, 0x97]);
    expect(device.client.connected).toBe(true);
  });

  it('an operator ban closes the live connection within a second and refuses the next (0x8A); lifting it lets the device back', async () => {
    const g = await limitedGateway({});
    const sensor = await deviceWithCertificate(g.t.node.context, 'sensor-1');
    const device = await connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1' });
    const closed = closedWith(device);
    const start = Date.now();
    await g.t.node.context.bans.add({ kind: 'thing', value: 'sensor-1', durationSeconds: 600, note: 'stolen' }, { name: 'operator:admin' });
    expect(await closed).toBe(0x98);
    expect(Date.now() - start).toBeLessThan(1_000);
    await g.t.node.gateway.pollRegistry();
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1' }))).code).toBe(0x8a);

    await g.t.node.context.bans.lift('thing', 'sensor-1', { name: 'operator:admin' });
    await g.t.node.gateway.pollRegistry();
    await (await connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1' })).end();
    const actions = (await g.t.node.context.audit.list({ limit: 50 })).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['device.ban', 'device.unban']));
  });

  it('an address ban cuts connections from that address before TLS; other addresses are served; bad bans are refused', async () => {
    const g = await limitedGateway({});
    const { bans } = g.t.node.context;
    await bans.add({ kind: 'address', value: '127.0.0.2/32' }, { name: 'operator:admin' });
    await g.t.node.gateway.pollRegistry();
    const sensor = await deviceWithCertificate(g.t.node.context, 'sensor-1');
    const from = (localAddress: string) => connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-1', localAddress } as Parameters<typeof connectDevice>[3]);
    expect((await refusal(from('127.0.0.2'))).code).toMatch(/ECONNRESET|EPIPE|ECONNREFUSED/);
    await (await from('127.0.0.3')).end();

    for (const [kind, value] of [['user', 'x'], ['address', 'not-an-ip'], ['address', '10.0.0.0/33'], ['thing', '']]) {
      expect(await refusalCode(bans.add({ kind: kind as string, value: value as string }, { name: 'operator:admin' })), `${kind} ${value}`).toBe('FW_ERR_VALIDATION');
    }
    expect(await refusalCode(bans.lift('thing', 'nobody', { name: 'operator:admin' }))).toBe('FW_ERR_NOT_FOUND');
    expect((await bans.list()).map((b) => `${b.kind}:${b.value}`)).toEqual(['address:127.0.0.2/32']);
  });

  it('refuses limits that contradict each other at start-up, naming the key', async () => {
    await expect(startTestNode('sqlite', { env: { FLEETWARD_LIMITS_BYTE_BURST: '1000', FLEETWARD_LIMITS_MAX_PAYLOAD_BYTES: '4096' } })).rejects.toThrow(/limits\.byteBurst = 1000/);
  });
});
