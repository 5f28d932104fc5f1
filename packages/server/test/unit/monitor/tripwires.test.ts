import { describe, expect, it } from 'vitest';
import { parseSecurityProfile } from '../../../src/monitor/detection/security-profile.js';
import { tripwireDetection, tripwiresFor, type Tripwire } from '../../../src/monitor/detection/tripwires.js';
import { CloudMetrics } from '../../../src/monitor/metrics/cloud-metrics.js';

const START = new Date('2026-12-04T10:00:00Z');
const profile = parseSecurityProfile({
  name: 'fast',
  behaviors: [
    { name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: 3, immediate: true, severity: 'critical', actions: ['quarantine'] },
    { name: 'denied', metric: 'cloud.authzFailures', operator: 'gte', value: 2, immediate: true },
    { name: 'slow', metric: 'cloud.messagesIn', operator: 'gt', value: 1 },
  ],
});

describe('immediate behaviours (tripwires)', () => {
  it('arms only the immediate behaviours, for the things whose groups carry the profile', () => {
    const wires = tripwiresFor(new Map([['fast', profile]]), new Map([['d1', ['fast']], ['d2', []]]));
    expect(wires.get('d1')?.map((w) => w.behavior.name)).toEqual(['flood', 'denied']);
    expect(wires.has('d2')).toBe(false);
  });

  it('trips once per window, the moment the count passes the value, and again in the next window', () => {
    const cloud = new CloudMetrics(START);
    const trips: { thing: string; behavior: string; observed: number }[] = [];
    cloud.watch(tripwiresFor(new Map([['fast', profile]]), new Map([['d1', ['fast']]])), new Map(), (thing, wire, observed) => trips.push({ thing, behavior: wire.behavior.name, observed }));
    for (let i = 0; i < 3; i++) cloud.message('d1', 'in', 10);
    expect(trips).toEqual([]);
    cloud.message('d1', 'in', 10);
    cloud.message('d1', 'in', 10);
    cloud.message('d2', 'in', 10);
    cloud.denied('d1');
    cloud.denied('d1');
    expect(trips).toEqual([
      { thing: 'd1', behavior: 'flood', observed: 4 },
      { thing: 'd1', behavior: 'denied', observed: 2 },
    ]);
    cloud.drain(new Date(START.getTime() + 60_000));
    for (let i = 0; i < 4; i++) cloud.message('d1', 'in', 10);
    expect(trips).toHaveLength(3);
  });

  it('watches a device that joined a profiled group since the last refresh, from its admission', () => {
    const cloud = new CloudMetrics(START);
    const trips: string[] = [];
    cloud.watch(new Map(), tripwiresFor(new Map([['fast', profile]]), new Map([['field', ['fast']]])), (thing) => trips.push(thing));
    cloud.arm('new-device', ['site', 'field']);
    cloud.arm('other', ['site']);
    for (let i = 0; i < 5; i++) {
      cloud.message('new-device', 'in', 1);
      cloud.message('other', 'in', 1);
    }
    expect(trips).toEqual(['new-device']);
  });

  it('raises the detection the window would raise (same dedupe key and actions)', () => {
    const [wire] = tripwiresFor(new Map([['fast', profile]]), new Map([['d1', ['fast']]])).get('d1') as Tripwire[];
    expect(tripwireDetection('d1', wire as Tripwire, 4, START)).toMatchObject({ thing: 'd1', behavior: 'flood', profile: 'fast', severity: 'critical', dedupeKey: 'd1/fast/flood', actions: ['quarantine'], value: 4 });
  });

  it('refuses immediate behaviours that cannot be judged before the window closes', () => {
    const refused = (behavior: Record<string, unknown>) => expect(() => parseSecurityProfile({ name: 'x', behaviors: [{ name: 'b', immediate: true, ...behavior }] })).toThrow(/immediate/);
    refused({ metric: 'cloud.messagesIn', operator: 'gt', statistic: 'p99' });
    refused({ metric: 'cloud.messagesIn', operator: 'lt', value: 3 });
    refused({ metric: 'device.cpuPercent', operator: 'gt', value: 90 });
    refused({ metric: 'cloud.messagesIn', operator: 'gt', value: 3, datapointsToAlarm: 2 });
  });
});
