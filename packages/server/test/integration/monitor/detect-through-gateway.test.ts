import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, deviceWithCertificate, type Connected } from '../../helpers/devices.js';
import { TestClock } from '../../helpers/environment.js';
import { startTestNode, type TestNode } from '../../helpers/test-node.js';

const admin = { name: 'operator:admin' };

/**
 * Rule 5 end to end on a node as it is composed: the gateway counts a flooding device's messages,
 * the window closes, the group's security profile flags it, and the response quarantines it —
 * while a quiet device in the same group is left alone.
 */
describe('detection through the gateway', () => {
  const clock = new TestClock(Date.now());
  let t: TestNode;
  let gatewayUrl: string;
  const devices: Connected[] = [];

  beforeAll(async () => {
    t = await startTestNode('sqlite', { clock });
    const { mqttUrl } = await t.node.listen();
    gatewayUrl = mqttUrl;
    const { identity } = t.node.context;
    await identity.groups.create({ name: 'meters' }, admin);
    await t.node.monitor.profiles.put(
      { name: 'meters', behaviors: [{ name: 'messages-in-high', metric: 'cloud.messagesIn', operator: 'gt', value: 20, severity: 'high', actions: ['quarantine'] }] },
      admin,
    );
    await t.node.monitor.profiles.attach('meters', 'meters', admin);
    for (const name of ['meter-flood', 'meter-quiet']) {
      await identity.things.create({ name, groups: ['meters'] }, admin);
      const credentials = await deviceWithCertificate(t.node.context, name, { create: false });
      devices.push(await connectDevice(mqttUrl, t.node.hierarchy.chainPem, credentials, { clientId: name }));
    }
  });
  afterAll(async () => {
    for (const d of devices) await d.client.endAsync(true).catch(() => undefined);
    await t.close();
  });

  it('quarantines the flooding device when its window closes, and raises an alert; the quiet one stays active', async () => {
    const [flood, quiet] = devices as [Connected, Connected];
    const closed = new Promise<void>((resolve) => flood.client.once('close', () => resolve()));
    for (let i = 0; i < 50; i++) await flood.client.publishAsync('things/meter-flood/telemetry', `${i}`, { qos: 1 });
    for (let i = 0; i < 5; i++) await quiet.client.publishAsync('things/meter-quiet/telemetry', `${i}`, { qos: 1 });

    clock.advance(61_000);
    const summary = await t.node.monitor.windows.tick(clock.now());
    expect(summary).not.toBeNull();

    expect((await t.node.context.identity.things.get('meter-flood')).state).toBe('quarantined');
    expect((await t.node.context.identity.things.get('meter-quiet')).state).toBe('active');
    const [alert] = await t.node.alerts.alerts.list({ thing: 'meter-flood' });
    expect(alert).toMatchObject({ behavior: 'messages-in-high', severity: 'high', state: 'open' });
    expect(await t.node.alerts.alerts.list({ thing: 'meter-quiet' })).toEqual([]);
    // The quarantine closes the live connection; it may come back only with quarantine's rights.
    await closed;
    const stored = await t.node.monitor.metrics.device('meter-flood', { since: new Date(clock.now().getTime() - 3_600_000).toISOString() });
    expect(stored.at(-1)).toMatchObject({ cloud: expect.objectContaining({ messagesIn: 50 }) });
  });

  it('an immediate behaviour quarantines a flooding device while it floods, without waiting for the window', async () => {
    const { identity } = t.node.context;
    await identity.groups.create({ name: 'fast' }, admin);
    await t.node.monitor.profiles.put({ name: 'fast', behaviors: [{ name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: 30, immediate: true, severity: 'critical', actions: ['quarantine'] }] }, admin);
    await t.node.monitor.profiles.attach('fast', 'fast', admin);
    await identity.things.create({ name: 'meter-fast', groups: ['fast'] }, admin);
    const credentials = await deviceWithCertificate(t.node.context, 'meter-fast', { create: false });
    await t.node.monitor.windows.refreshTripwires();
    const fast = await connectDevice(gatewayUrl, t.node.hierarchy.chainPem, credentials, { clientId: 'meter-fast' });
    devices.push(fast);
    const closed = new Promise<void>((resolve) => fast.client.once('close', () => resolve()));
    // Fire and forget, as a compromised device would; the window never closes during this test.
    for (let i = 0; i < 200; i++) fast.client.publish('things/meter-fast/telemetry', `${i}`, { qos: 0 });
    await closed;
    expect((await identity.things.get('meter-fast')).state).toBe('quarantined');
    const [alert] = await t.node.alerts.alerts.list({ thing: 'meter-fast' });
    expect(alert).toMatchObject({ behavior: 'flood', severity: 'critical' });
    // Refused: an immediate behaviour on a fleet statistic (it cannot be judged before the window closes).
    await expect(t.node.monitor.profiles.put({ name: 'bad', behaviors: [{ name: 'x', metric: 'cloud.messagesIn', operator: 'gt', statistic: 'p99', immediate: true }] }, admin)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
  });
});
