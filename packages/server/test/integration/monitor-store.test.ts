import { afterEach, describe, expect, it } from 'vitest';
import { closeContext, openHome, type NodeContext } from '../../src/node.js';
import { DetectionStateStore } from '../../src/monitor/detection-state-store.js';
import { MetricsStore } from '../../src/monitor/metrics/metrics-store.js';
import { EMPTY_CLOUD, type WindowMetrics } from '../../src/monitor/metrics/window-metrics.js';
import { MonitorWindows } from '../../src/monitor/monitor-windows.js';
import { SecurityProfiles } from '../../src/monitor/security-profiles.js';
import type { Detection } from '../../src/monitor/types.js';
import { DIALECTS, testEnvironment, TestClock, type Dialect } from '../helpers/environment.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const actor = { name: 'operator:test' };

async function fresh(dialect: Dialect): Promise<{ context: NodeContext; clock: TestClock; metrics: MetricsStore; profiles: SecurityProfiles }> {
  const env = await testEnvironment(dialect);
  const clock = new TestClock(Date.parse('2026-12-01T00:00:30.000Z'));
  const { context } = await openHome(env.config(), { create: true, clock });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  const metrics = new MetricsStore({ store: context.store, audit: context.audit, clock });
  const profiles = new SecurityProfiles({ store: context.store, audit: context.audit, clock });
  return { context, clock, metrics, profiles };
}

function window(thing: string, start: string, messagesIn: number, reported = true): WindowMetrics {
  return {
    thing,
    windowStart: start,
    windowEnd: new Date(Date.parse(start) + 60_000).toISOString(),
    cloud: { ...EMPTY_CLOUD, messagesIn, bytesIn: messagesIn * 100, messageSizeMax: 100, messageSizeMean: 100, sourceAddresses: ['192.0.2.1'], sourceAddressCount: 1 },
    device: reported
      ? { listening: ['tcp/22'], listeningPorts: [22], listeningTotal: 1, established: 2, destinations: ['198.51.100.1'], bytesIn: 5_000_000_000, bytesOut: 1, packetsIn: 1, packetsOut: 1, processes: 30, memoryUsedBytes: 1e8, cpuPercent: 12.5, diskUsedBytes: 1e9, uptimeSeconds: 100, agentRestarts: 0, authFailures: 0, batteryPercent: null }
      : null,
    custom: reported ? { 'queue.depth': 3, 'modbus.peers': ['10.20.0.5', '2001:db8::5'], services: ['mosquitto'], 'service.ports': [502, 1883] } : {},
  };
}

describe.each(DIALECTS)('monitor storage on %s', (dialect) => {
  it('stores windows per device, aggregates them per group (with subgroups), and prunes after the retention', async () => {
    const { context, clock, metrics } = await fresh(dialect);
    const { things, groups } = context.identity;
    for (const name of ['a', 'b', 'c']) await things.create({ name }, actor);
    await groups.create({ name: 'site' }, actor);
    await groups.create({ name: 'line', parent: 'site' }, actor);
    await groups.addThing('site', 'a', actor);
    await groups.addThing('line', 'b', actor);
    const w1 = '2026-11-20T00:00:00.000Z';
    const w2 = '2026-12-01T00:00:00.000Z';
    await metrics.write([window('a', w1, 5), window('a', w2, 10), window('b', w2, 20, false), window('c', w2, 1000)]);
    const a = await metrics.device('a', { since: '2026-01-01T00:00:00.000Z' });
    expect(a.map((w) => w.windowStart)).toEqual([w1, w2]);
    expect(a[1]).toEqual(window('a', w2, 10));
    const site = await metrics.group('site', { since: w2 });
    expect(site).toEqual([expect.objectContaining({ windowStart: w2, devices: 2, reporting: 1, messagesIn: 30, bytesIn: 3000, messageSizeMax: 100, listeningTotalMax: 1, cpuPercentMean: 12.5 })]);
    clock.advance(0);
    expect(await metrics.prune(7)).toBe(1);
    expect((await metrics.device('a', { since: '2026-01-01T00:00:00.000Z' })).length).toBe(1);
    await expect(metrics.group('nope', { since: w2 })).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
  });

  it('merges the rows two nodes of a cluster wrote for one device and window', async () => {
    const { metrics } = await fresh(dialect);
    const start = '2026-12-01T00:00:00.000Z';
    const first = window('moved', start, 10, false);
    const second = window('moved', start, 30);
    await metrics.write([{ ...first, cloud: { ...first.cloud, messageSizeMax: 500, messageSizeMean: 50, disconnectedSeconds: 40 } }]);
    await metrics.write([{ ...second, cloud: { ...second.cloud, messageSizeMean: 150, disconnectedSeconds: 20 } }]);
    const [merged] = await metrics.device('moved', { since: start });
    expect(merged?.cloud).toMatchObject({ messagesIn: 40, bytesIn: 4000, messageSizeMax: 500, messageSizeMean: 125, disconnectedSeconds: 20 });
    expect(merged?.device).toEqual(second.device);
    // Custom values come with the report: the node that had it wins, whichever wrote last.
    expect(merged?.custom).toEqual(second.custom);
    const other = '2026-12-01T00:01:00.000Z';
    await metrics.write([window('moved', other, 30)]);
    await metrics.write([window('moved', other, 10, false)]);
    expect((await metrics.device('moved', { since: other }))[0]?.custom).toEqual(window('moved', other, 30).custom);
  });

  it('declares custom metrics per thing type; profiles are stored, attached to groups and reach nested members', async () => {
    const { context, metrics, profiles } = await fresh(dialect);
    const { things, groups, thingTypes } = context.identity;
    await thingTypes.create({ name: 'meter' }, actor);
    await metrics.declareCustom({ thingType: 'meter', name: 'queue.depth', kind: 'number' }, actor);
    await metrics.declareCustom({ thingType: 'meter', name: 'peers', kind: 'address-list' }, actor);
    await expect(metrics.declareCustom({ thingType: 'meter', name: 'x', kind: 'blob' }, actor)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(metrics.declareCustom({ thingType: 'nope', name: 'x', kind: 'number' }, actor)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    expect((await metrics.customDeclarations()).get('meter')).toEqual(new Map([['peers', 'address-list'], ['queue.depth', 'number']]));

    await things.create({ name: 'm1' }, actor);
    await groups.create({ name: 'plant' }, actor);
    await groups.create({ name: 'hall', parent: 'plant' }, actor);
    await groups.addThing('hall', 'm1', actor);
    const doc = { name: 'strict', description: 'x', behaviors: [{ name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: 100 }] };
    await profiles.put(doc, actor);
    await profiles.attach('strict', 'plant', actor);
    expect(await profiles.get('strict')).toMatchObject({ name: 'strict', groups: ['plant'], document: doc });
    const { byThing, profiles: parsed } = await profiles.assignments();
    expect(byThing.get('m1')).toEqual(['strict']);
    expect(parsed.get('strict')?.behaviors[0]?.name).toBe('flood');
    await expect(profiles.put({ name: 'bad', behaviors: [{ name: 'x', metric: 'nope', operator: 'gt', value: 1 }] }, actor)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(profiles.attach('strict', 'nowhere', actor)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await profiles.detach('strict', 'plant', actor);
    expect((await profiles.assignments()).byThing.size).toBe(0);
    await profiles.delete('strict', actor);
    expect(await profiles.list()).toEqual([]);
    const actions = (await context.store.db.selectFrom('audit_events').select('action').where('action', 'like', 'monitor.%').orderBy('seq').execute()).map((r) => r.action);
    expect(actions).toEqual(['monitor.custom-metric.declare', 'monitor.custom-metric.declare', 'monitor.profile.create', 'monitor.profile.attach', 'monitor.profile.detach', 'monitor.profile.delete']);
  });

  it('closes a window: stores it, detects, keeps detection state across a restart', async () => {
    const { context, clock, metrics, profiles } = await fresh(dialect);
    await context.identity.things.create({ name: 'dev' }, actor);
    await context.identity.groups.create({ name: 'all' }, actor);
    await context.identity.groups.addThing('all', 'dev', actor);
    await profiles.put({ name: 'p', behaviors: [{ name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: 100, actions: ['quarantine'], severity: 'critical' }] }, actor);
    await profiles.attach('p', 'all', actor);
    const detections: Detection[] = [];
    const make = () => new MonitorWindows({ clock, logger: { error: () => undefined, warn: () => undefined } as never, metrics, counters: context.metrics, profiles, state: new DetectionStateStore(context.store), sink: { detected: (d) => Promise.resolve(void detections.push(d)) }, windowSeconds: 60, retentionDays: 14 });
    const monitor = make();
    await monitor.start();
    monitor.cloud.connected('dev', 'serial', '192.0.2.1', clock.now());
    for (let i = 0; i < 500; i += 1) monitor.cloud.message('dev', 'in', 64);
    expect(await monitor.tick(clock.now())).toBeNull();
    clock.advance(30_000);
    expect(await monitor.tick(clock.now())).toMatchObject({ windowStart: '2026-12-01T00:00:00.000Z', devices: 1, detections: 1 });
    expect(detections[0]).toMatchObject({ thing: 'dev', behavior: 'flood', profile: 'p', severity: 'critical', actions: ['quarantine'], value: 500, at: '2026-12-01T00:01:00.000Z' });
    expect((await metrics.device('dev', { since: '2026-12-01T00:00:00.000Z' }))[0]?.cloud.messagesIn).toBe(500);

    // A restarted node remembers the source address it learned: a new one is detected at once.
    const restarted = make();
    await restarted.start();
    restarted.cloud.connectAttempt('dev', '203.0.113.5', 'accepted');
    clock.advance(60_000);
    await restarted.tick(clock.now());
    // The first node learned no address (it saw `connected`, not a connect attempt): the restarted one learns 203.0.113.5 silently.
    expect(detections.filter((d) => d.behavior === 'new-source-address')).toEqual([]);
    restarted.cloud.connectAttempt('dev', '198.51.100.9', 'accepted');
    clock.advance(60_000);
    await restarted.tick(clock.now());
    const third = make();
    await third.start();
    third.cloud.connectAttempt('dev', '198.51.100.77', 'accepted');
    clock.advance(60_000);
    await third.tick(clock.now());
    expect(detections.filter((d) => d.behavior === 'new-source-address').map((d) => d.value)).toEqual(['198.51.100.9', '198.51.100.77']);
  });
});
