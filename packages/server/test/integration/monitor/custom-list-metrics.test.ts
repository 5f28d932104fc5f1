import { Topics, type CustomMetricValue, type DeviceMetricsReport } from '@fleetward/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, deviceWithCertificate, type Connected } from '../../helpers/devices.js';
import { TestClock } from '../../helpers/environment.js';
import { startTestNode, type TestNode } from '../../helpers/test-node.js';

const admin = { name: 'operator:admin' };

/** A well-formed metrics report whose only interesting part is `custom`. */
function report(custom: Readonly<Record<string, CustomMetricValue>>): DeviceMetricsReport {
  return {
    v: 1,
    at: new Date().toISOString(),
    network: { listening: [{ protocol: 'tcp', address: '0.0.0.0', port: 502 }], listeningTotal: 1, established: 1, destinations: ['10.20.0.5'], bytesIn: 1000, bytesOut: 1000, packetsIn: 10, packetsOut: 10 },
    processes: 40,
    memory: { totalBytes: 1e9, usedBytes: 4e8 },
    cpuPercent: 5,
    disk: { totalBytes: 1e10, usedBytes: 1e9, freeBytes: 9e9 },
    uptimeSeconds: 1000,
    agentRestarts: 0,
    authFailures: 0,
    batteryPercent: null,
    custom,
  };
}

/**
 * Rule 5's custom list metrics from the attacker's side, through the real ingest path: devices of a
 * thing type that declares an address list (its Modbus peers) and a string list (its services)
 * report them over mutual TLS; the group's profile allows one address block and two services. A
 * device talking to a peer outside the block, or running a service outside the set, is flagged
 * when its window closes; a report with a malformed list is refused at the gateway; a value of the
 * wrong kind or an undeclared name is dropped and counted, and nothing else about the report is lost.
 */
describe('custom list metrics through the gateway', () => {
  const clock = new TestClock(Date.now());
  let t: TestNode;
  const devices = new Map<string, Connected>();
  const publish = (thing: string, body: unknown): Promise<number | null> =>
    (devices.get(thing) as Connected).client.publishAsync(Topics.metrics(thing), JSON.stringify(body), { qos: 1 }).then(
      () => null,
      (error: { code?: number }) => error.code ?? -1,
    );

  beforeAll(async () => {
    t = await startTestNode('sqlite', { clock });
    const { mqttUrl } = await t.node.listen();
    const { identity } = t.node.context;
    const { metrics, profiles, windows } = t.node.monitor;
    await identity.thingTypes.create({ name: 'plc' }, admin);
    await metrics.declareCustom({ thingType: 'plc', name: 'modbus.peers', kind: 'address-list', description: 'addresses the PLC polls over Modbus/TCP' }, admin);
    await metrics.declareCustom({ thingType: 'plc', name: 'services', kind: 'string-list' }, admin);
    await metrics.declareCustom({ thingType: 'plc', name: 'queue.depth', kind: 'number' }, admin);
    await identity.groups.create({ name: 'plcs' }, admin);
    await profiles.put(
      {
        name: 'plcs',
        behaviors: [
          { name: 'modbus-peers', metric: 'custom.modbus.peers', operator: 'not-in', cidrs: ['10.20.0.0/16'], severity: 'high', actions: ['quarantine'] },
          { name: 'services', metric: 'custom.services', operator: 'not-in', strings: ['mosquitto', 'plc-runtime'] },
        ],
      },
      admin,
    );
    await profiles.attach('plcs', 'plcs', admin);
    // Declarations are read once a window; this one must count from the first.
    await windows.start();
    for (const name of ['plc-rogue', 'plc-shell', 'plc-good', 'plc-sloppy']) {
      await identity.things.create({ name, type: 'plc', groups: ['plcs'] }, admin);
      const credentials = await deviceWithCertificate(t.node.context, name, { create: false });
      devices.set(name, await connectDevice(mqttUrl, t.node.hierarchy.chainPem, credentials, { clientId: name }));
    }
  });
  afterAll(async () => {
    for (const d of devices.values()) await d.client.endAsync(true).catch(() => undefined);
    await t.close();
  });

  it('flags an address outside the allowed block and a service outside the allowed set; keeps the good device\'s lists; refuses or drops bad input and counts it', async () => {
    const allowedPeers = { 'address-list': ['10.20.0.5', '10.20.3.9'] };
    const allowedServices = { 'string-list': ['mosquitto', 'plc-runtime'] };
    // A compromised PLC polling an outside host (the IPv6 one is inside no block either).
    expect(await publish('plc-rogue', report({ 'modbus.peers': { 'address-list': ['10.20.0.5', '203.0.113.50', '2001:db8::66'] }, services: allowedServices }))).toBeNull();
    // A reverse shell shows up among the services.
    expect(await publish('plc-shell', report({ 'modbus.peers': allowedPeers, services: { 'string-list': ['mosquitto', 'nc'] } }))).toBeNull();
    // Within every set, plus a name its type does not declare.
    expect(await publish('plc-good', report({ 'modbus.peers': allowedPeers, services: allowedServices, 'queue.depth': 3, stuffing: 1 }))).toBeNull();
    // Refused at the door: a list item that is not an address, a list without its kind, a list over the bound.
    expect(await publish('plc-sloppy', report({ 'modbus.peers': { 'address-list': ['10.20.0.5', 'evil.example.com'] } }))).toBe(0x99);
    expect(await publish('plc-sloppy', { ...report({}), custom: { 'modbus.peers': ['203.0.113.50'] } })).toBe(0x99);
    expect(await publish('plc-sloppy', report({ services: { 'string-list': Array.from({ length: 257 }, (_, i) => `svc-${i}`) } }))).toBe(0x99);
    // Well-formed, but not what its type declares: a number list where addresses are declared, a list where a number is.
    // Dropped and counted; the peer outside the block it carries is no way around the CIDR behaviour.
    expect(await publish('plc-sloppy', report({ 'modbus.peers': { 'string-list': ['203.0.113.50'] }, 'queue.depth': { 'number-list': [1, 2] }, services: allowedServices }))).toBeNull();

    clock.advance(61_000);
    const summary = await t.node.monitor.windows.tick(clock.now());
    expect(summary).toMatchObject({ devices: 4, droppedCustom: 3 });

    const alerts = async (thing: string) => (await t.node.alerts.alerts.list({ thing })).map((a) => ({ behavior: a.behavior, severity: a.severity }));
    expect(await alerts('plc-rogue')).toEqual([{ behavior: 'modbus-peers', severity: 'high' }]);
    expect(await alerts('plc-shell')).toEqual([{ behavior: 'services', severity: 'medium' }]);
    expect(await alerts('plc-good')).toEqual([]);
    expect(await alerts('plc-sloppy')).toEqual([]);
    const [rogue] = await t.node.alerts.alerts.list({ thing: 'plc-rogue' });
    expect(JSON.stringify(rogue)).toContain('203.0.113.50');
    expect(JSON.stringify(rogue)).toContain('2001:db8::66');
    expect(JSON.stringify(rogue)).not.toContain('10.20.0.5');
    expect((await t.node.context.identity.things.get('plc-rogue')).state).toBe('quarantined');
    expect((await t.node.context.identity.things.get('plc-shell')).state).toBe('active');

    const since = new Date(clock.now().getTime() - 3_600_000).toISOString();
    const [good] = await t.node.monitor.metrics.device('plc-good', { since });
    expect(good?.custom).toEqual({ 'modbus.peers': ['10.20.0.5', '10.20.3.9'], services: ['mosquitto', 'plc-runtime'], 'queue.depth': 3 });
    const [sloppy] = await t.node.monitor.metrics.device('plc-sloppy', { since });
    // Its report counted (built-in metrics and the one value of the declared kind), its mistyped values did not.
    expect(sloppy?.device?.listeningPorts).toEqual([502]);
    expect(sloppy?.custom).toEqual({ services: ['mosquitto', 'plc-runtime'] });

    const scraped = await t.node.context.metrics.registry.metrics();
    expect(scraped).toMatch(/fleetward_monitor_custom_metrics_dropped_total\{reason="wrong-kind"\} 2/);
    expect(scraped).toMatch(/fleetward_monitor_custom_metrics_dropped_total\{reason="undeclared"\} 1/);
  });
});
