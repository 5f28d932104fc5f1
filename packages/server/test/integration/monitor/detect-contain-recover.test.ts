import { afterEach, describe, expect, it } from 'vitest';
import type { Detection } from '../../../src/monitor/types.js';
import { connectDevice, deviceWithCertificate, type Connected } from '../../helpers/devices.js';
import { startTestNode } from '../../helpers/test-node.js';
import { startWebhookReceiver } from '../../helpers/webhook-receiver.js';

// Rule 5, the runbook of docs/rule-05-response.md end to end against a real node: a hostile device
// is detected, contained (quarantine: its rights shrink to its reserved namespace), operators are
// notified (signed webhook, MQTT topic), then it is acknowledged, judged and released.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:alice' };
const SECRET = 'whsec-0123456789abcdef-runbook';

async function publishOutcome(device: Connected, topic: string): Promise<number | 'ok'> {
  return device.client.publishAsync(topic, JSON.stringify({ temp: 21 }), { qos: 1 }).then(
    () => 'ok' as const,
    (error: { code?: number }) => error.code ?? -1,
  );
}

function closed(device: Connected): Promise<void> {
  return new Promise((resolve) => {
    if (!device.client.connected) resolve();
    device.client.once('close', () => resolve());
  });
}

describe('detect → contain → recover (rule 5 runbook)', () => {
  it('quarantines a flooding device in the detection call, notifies, and recovers it on release', async () => {
    const t = await startTestNode('sqlite');
    cleanups.push(() => t.close());
    const { mqttUrl } = await t.node.listen();
    const caPem = t.node.hierarchy.chainPem;
    const { context, gateway } = t.node;
    const receiver = await startWebhookReceiver(SECRET);
    cleanups.push(() => receiver.close());
    // The node's own alert service, as it composes it: notifications go out through its gateway.
    const services = t.node.alerts;
    await services.notifier.addWebhook({ name: 'soc', url: receiver.url, secret: SECRET, caPem: receiver.caPem, minSeverity: 'medium' }, admin);

    // The fleet: a sensor that may publish its telemetry, and an operator application on the alerts topic.
    await context.policies.create('sensor', { version: '2026-11', statements: [
      { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
      { effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/telemetry'] },
      { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/$fw/things/${thing.name}/#'] },
    ] }, admin);
    await context.policies.create('alert-consumer', { version: '2026-11', statements: [
      { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
      { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/$fw/alerts/#'] },
    ] }, admin);
    const sensor = await deviceWithCertificate(context, 'sensor-7');
    const ops = await deviceWithCertificate(context, 'soc-console');
    await context.policies.attach('sensor', { kind: 'thing', name: 'sensor-7' }, admin);
    await context.policies.attach('alert-consumer', { kind: 'thing', name: 'soc-console' }, admin);
    await gateway.pollRegistry();
    const console = await connectDevice(mqttUrl, caPem, ops, { clientId: 'soc-console' });
    cleanups.push(() => console.client.endAsync(true));
    await console.client.subscribeAsync('$fw/alerts/#', { qos: 1 });
    const onTopic: { topic: string; body: { event: string; alert: { id: string } } }[] = [];
    console.client.on('message', (topic, payload) => onTopic.push({ topic, body: JSON.parse(payload.toString()) as { event: string; alert: { id: string } } }));

    let device = await connectDevice(mqttUrl, caPem, sensor, { clientId: 'sensor-7' });
    cleanups.push(() => device.client.endAsync(true));
    expect(await publishOutcome(device, 'things/sensor-7/telemetry')).toBe('ok');
    const before = (await context.audit.verify()).head?.seq ?? 0;

    // 1. Detect: what the detection engine emits for a flood (messages-out above the group's p99).
    const detection: Detection = {
      thing: 'sensor-7',
      behavior: 'messages-out-high',
      profile: 'default-sensors',
      severity: 'high',
      metric: 'messages_out',
      value: 48_000,
      message: 'sensor-7 sent 48000 messages in 1 min (p99 of group sensors: 120)',
      at: context.clock.now().toISOString(),
      dedupeKey: 'default-sensors/messages-out-high/sensor-7',
      actions: ['quarantine', 'notify'],
    };
    const disconnected = closed(device);
    const outcome = await services.ingest(detection);

    // 2. Contain: quarantined within the call; the live connection is closed and comes back with quarantine rights only.
    expect(outcome.kind).toBe('opened');
    expect((await context.identity.things.get('sensor-7')).state).toBe('quarantined');
    await disconnected;
    device = await connectDevice(mqttUrl, caPem, sensor, { clientId: 'sensor-7' });
    expect(await publishOutcome(device, 'things/sensor-7/telemetry')).toBe(0x87);
    const granted = await device.client.subscribeAsync('$fw/things/sensor-7/jobs/notify', { qos: 1 });
    expect(granted[0]?.qos).toBe(1);

    await services.notifier.settle();

    // A repeat of the same behaviour bumps the open alert, it does not open another or act again.
    const again = await services.ingest({ ...detection, value: 51_000 });
    expect(again.kind).toBe('bumped');
    const alertId = outcome.kind === 'opened' ? outcome.alert.id : '';
    expect(again.kind === 'bumped' && again.alert.id).toBe(alertId);

    // 3. Notified: signed webhook (verified by the receiver) and the operators' MQTT topic.
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]?.signatureValid).toBe(true);
    expect((receiver.received[0]?.body.alert as { id: string }).id).toBe(alertId);
    await expect.poll(() => onTopic.map((m) => `${m.topic} ${m.body.event}`)).toEqual(['$fw/alerts/high opened', '$fw/alerts/high notify']);

    let incident = await services.incident(alertId);
    expect(incident.alert).toMatchObject({ state: 'open', severity: 'high', count: 2, thing: 'sensor-7' });
    expect(incident.actions.map((a) => [a.action, a.state, a.mode])).toEqual([['quarantine', 'succeeded', 'automatic'], ['notify', 'succeeded', 'automatic']]);
    expect(incident.deliveries.map((d) => d.state)).toEqual(['delivered']);

    // 4. Recover: acknowledge, judge, note, release, resolve (the runbook's commands).
    await services.alerts.acknowledge(alertId, admin);
    await services.alerts.setVerdict(alertId, 'true-positive', admin);
    await services.alerts.note(alertId, 'reflashed the gateway image; credentials unchanged', admin);
    const quarantined = closed(device);
    expect(await services.response.release('sensor-7', admin)).toMatchObject({ from: 'quarantined', to: 'active', changed: true });
    expect(await services.response.release('sensor-7', admin)).toMatchObject({ changed: false });
    await quarantined;
    device = await connectDevice(mqttUrl, caPem, sensor, { clientId: 'sensor-7' });
    expect(await publishOutcome(device, 'things/sensor-7/telemetry')).toBe('ok');
    await services.alerts.resolve(alertId, admin);

    incident = await services.incident(alertId);
    expect(incident.alert).toMatchObject({ state: 'resolved', verdict: 'true-positive' });
    expect(incident.timeline.map((e) => e.kind)).toEqual(['detection', 'action', 'notification', 'action', 'notification', 'detection', 'state', 'verdict', 'note', 'action', 'action', 'state']);

    // 5. The whole incident is in the audit trail, in order, and the chain verifies.
    const relevant = new Set(['alert.open', 'thing.state', 'response.action', 'alert.acknowledge', 'alert.verdict', 'alert.note', 'response.release', 'alert.resolve']);
    const trail = (await context.audit.list({ afterSeq: before, limit: 1000 })).filter((e) => relevant.has(e.action) && (e.target === 'thing:sensor-7' || e.target === `alert:${alertId}`));
    expect(trail.map((e) => `${e.action}:${e.actor}`)).toEqual([
      'alert.open:monitor',
      'thing.state:monitor',
      'response.action:monitor',
      'response.action:monitor',
      'alert.acknowledge:operator:alice',
      'alert.verdict:operator:alice',
      'alert.note:operator:alice',
      'thing.state:operator:alice',
      'response.release:operator:alice',
      'response.release:operator:alice',
      'alert.resolve:operator:alice',
    ]);
    expect((await context.audit.verify()).ok).toBe(true);
  }, 30_000);
});
