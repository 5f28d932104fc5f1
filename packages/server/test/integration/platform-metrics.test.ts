import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, deviceWithCertificate, type Connected } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

/** Rule 5's platform metrics: what an operator's Prometheus sees of the gateway and the queues. */
describe('platform metrics', () => {
  let t: TestNode;
  let device: Connected;

  beforeAll(async () => {
    t = await startTestNode('sqlite');
    const { mqttUrl } = await t.node.listen();
    device = await connectDevice(mqttUrl, t.node.hierarchy.chainPem, await deviceWithCertificate(t.node.context, 'meter-1'), { clientId: 'meter-1' });
  });
  afterAll(async () => {
    await device.end();
    await t.close();
  });

  const value = async (name: string): Promise<number> => {
    const text = await t.node.context.metrics.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return Number(line?.split(' ').at(-1));
  };

  it('counts live clients, messages in and out, and times policy decisions', async () => {
    await device.client.subscribeAsync('things/meter-1/echo', { qos: 1 });
    for (let i = 0; i < 70; i++) await device.client.publishAsync('things/meter-1/echo', `${i}`, { qos: 1 });
    expect(await value('fleetward_mqtt_clients')).toBe(1);
    expect(await value('fleetward_mqtt_connections')).toBe(1);
    expect(await value('fleetward_mqtt_subscriptions')).toBe(1);
    expect(await value('fleetward_mqtt_messages_received_total')).toBeGreaterThanOrEqual(70);
    expect(await value('fleetward_mqtt_messages_delivered_total')).toBeGreaterThanOrEqual(1);
    // One publish in 64 is timed: 70 publishes give at least one sample.
    expect(await value('fleetward_policy_evaluation_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(await value('fleetward_audit_queue_depth')).toBeGreaterThanOrEqual(0);
    expect(await value('fleetward_telemetry_queue_depth')).toBeGreaterThanOrEqual(0);
  });

  it('counts data-contract verdicts by outcome and reason, the same on every scrape', async () => {
    const series = async (): Promise<Record<string, number>> => {
      const text = await t.node.context.metrics.registry.getSingleMetricAsString('fleetward_data_messages_total');
      return Object.fromEntries(text.split('\n').filter((l) => l.startsWith('fleetward_data_messages_total{')).map((l) => [l.slice(l.indexOf('{'), l.lastIndexOf(' ')), Number(l.split(' ').at(-1))]));
    };
    const before = await series();
    const key = Object.keys(before).find((k) => k.includes('outcome="unclassified"') || k.includes('reason="no-contract"'));
    expect(key).toBeDefined();
    for (let i = 0; i < 5; i++) await device.client.publishAsync('things/meter-1/echo', `${i}`, { qos: 1 }).catch(() => undefined);
    const after = await series();
    expect(after[key as string]).toBe((before[key as string] ?? 0) + 5);
    // Read at scrape time from the ingest's totals: a second scrape adds nothing.
    expect(await series()).toEqual(after);
    const totals = t.node.context.data.ingest.verdictTotals();
    expect(totals.reduce((sum, v) => sum + v.count, 0)).toBe(Object.values(after).reduce((sum, v) => sum + v, 0));
  });
});
