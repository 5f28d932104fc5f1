import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeThrottleSummary, Throttle, DEFAULT_THROTTLE_SETTINGS } from '../../src/access/throttling/index.js';
import { OTHER_KEY, RefusalAggregator, type RefusalSummary } from '../../src/access/throttling/refusal-aggregator.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function totalOf(summaries: readonly RefusalSummary[]): number {
  return summaries.reduce((sum, s) => sum + s.total, 0);
}

describe('refusal aggregation for the audit trail', () => {
  it('ok/a flood from one thing is one record per window, with exact counts and span', () => {
    const aggregator = new RefusalAggregator({ intervalMs: 10_000, maxKeys: 100 });
    for (let i = 0; i < 5_312; i++) aggregator.record('dev-1', i % 2 === 0 ? 'message-rate' : 'byte-rate', T0 + (i % 9_870));
    expect(aggregator.drain(T0 + 9_999)).toEqual([]);
    expect(aggregator.drain(T0 + 10_000)).toEqual([
      { key: 'dev-1', counts: { 'message-rate': 2_656, 'byte-rate': 2_656 }, total: 5_312, firstAt: T0, lastAt: T0 + 5_311, keysFolded: 0 },
    ]);
    expect(aggregator.drain(T0 + 20_000)).toEqual([]);
  });

  it('fail/1e5 refusals from 1e5 distinct keys yield a bounded number of records and lose no count', () => {
    const aggregator = new RefusalAggregator({ intervalMs: 10_000, maxKeys: 1_000 });
    for (let i = 0; i < 100_000; i++) aggregator.record(`source-${i}`, 'handshake-rate', T0 + (i % 1_000));
    expect(aggregator.size).toBeLessThanOrEqual(1_000);
    // Every key's interval opened within the first second: all are due 10 s after it.
    const summaries = aggregator.drain(T0 + 11_000);
    expect(summaries.length).toBeLessThanOrEqual(1_001);
    expect(totalOf(summaries)).toBe(100_000);
    const other = summaries.find((s) => s.key === OTHER_KEY);
    expect(other?.keysFolded).toBeGreaterThanOrEqual(99_000);
  });

  it('ok/the Throttle reports refusals by subject, readable as one line', () => {
    const throttle = new Throttle({ ...DEFAULT_THROTTLE_SETTINGS, messagesPerSecond: 1, messageBurst: 1, rateDisconnectAfterRefusals: 1_000_000 }, T0);
    for (let i = 0; i < 5_313; i++) throttle.allowPublish('dev-1', 1, T0 + 5);
    throttle.allowHandshake('192.0.2.7', T0);
    throttle.ban({ kind: 'address', value: '192.0.2.7' }, { expiresAt: null }, T0);
    throttle.allowHandshake('192.0.2.7', T0 + 1);
    const [thing, source] = throttle.tick(T0 + 10_005);
    expect(thing).toMatchObject({ subject: 'thing', name: 'dev-1', total: 5_312, counts: { 'message-rate': 5_312 } });
    expect(source).toMatchObject({ subject: 'source', name: '192.0.2.7', total: 1, counts: { 'address-banned': 1 } });
    expect(describeThrottleSummary(thing!)).toBe('thing dev-1: 5,312 refusals (message-rate 5,312), 12:00:00.005–12:00:00.005 UTC');
    expect(throttle.stats().refusals['message-rate']).toBe(5_312);
  });

  it('ok/flush returns what is pending, due or not (shutdown)', () => {
    const aggregator = new RefusalAggregator({ intervalMs: 10_000, maxKeys: 10 });
    aggregator.record('a', 'connect-rate', T0);
    expect(aggregator.flush()).toHaveLength(1);
    expect(aggregator.flush()).toEqual([]);
  });

  it('property: counts sum exactly, per key and reason, across folding, drains and flush', () => {
    const event = fc.record({ key: fc.integer({ min: 0, max: 40 }), reason: fc.constantFrom('message-rate', 'byte-rate', 'connect-rate'), advanceMs: fc.integer({ min: 0, max: 3_000 }), drain: fc.boolean() });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(event, { maxLength: 300 }), (maxKeys, events) => {
        const aggregator = new RefusalAggregator({ intervalMs: 5_000, maxKeys });
        const summaries: RefusalSummary[] = [];
        let now = T0;
        for (const { key, reason, advanceMs, drain } of events) {
          now += advanceMs;
          aggregator.record(`k${key}`, reason, now);
          if (drain) summaries.push(...aggregator.drain(now));
          expect(aggregator.size).toBeLessThanOrEqual(maxKeys);
        }
        summaries.push(...aggregator.flush());
        expect(totalOf(summaries)).toBe(events.length);
        for (const reason of ['message-rate', 'byte-rate', 'connect-rate']) {
          const counted = summaries.reduce((sum, s) => sum + ((s.counts as Record<string, number>)[reason] ?? 0), 0);
          expect(counted).toBe(events.filter((e) => e.reason === reason).length);
        }
        for (const s of summaries) expect(Object.values(s.counts).reduce<number>((a, b) => a + (b ?? 0), 0)).toBe(s.total);
      }),
      { numRuns: 300 },
    );
  });
});
