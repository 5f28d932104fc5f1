import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BucketRate, TokenBucket } from '../../src/access/throttling/token-bucket.js';

describe('token bucket', () => {
  it('ok/starts full: a quiet device gets exactly its burst, then nothing', () => {
    const bucket = new TokenBucket(BucketRate.perSecond(10, 5), 1_000);
    for (let i = 0; i < 5; i++) expect(bucket.take(1, 1_000)).toBe(true);
    expect(bucket.take(1, 1_000)).toBe(false);
  });

  it('ok/refills exactly: 10/s gives one token every 100 ms, not one ms early', () => {
    const bucket = new TokenBucket(BucketRate.perSecond(10, 1), 0);
    expect(bucket.take(1, 0)).toBe(true);
    expect(bucket.take(1, 99)).toBe(false);
    expect(bucket.take(1, 100)).toBe(true);
    expect(bucket.waitMs(1, 150)).toBe(50);
    expect(bucket.take(1, 199)).toBe(false);
    expect(bucket.take(1, 200)).toBe(true);
  });

  it('ok/rates that do not divide a second stay exact after a million refills (no float drift)', () => {
    // 3 per second: one token every 333.33 ms; after 1,000,000 s exactly 3,000,000 tokens have come.
    const bucket = new TokenBucket(BucketRate.perSecond(3, 1), 0);
    bucket.take(1, 0);
    let taken = 0;
    for (let t = 1; t <= 1_000_000; t++) if (bucket.take(1, t * 1000)) taken++;
    expect(taken).toBe(1_000_000);
    expect(bucket.tokens(1_000_000_000)).toBe(0);
    expect(bucket.take(1, 1_000_000_333)).toBe(false);
    expect(bucket.take(1, 1_000_000_334)).toBe(true);
  });

  it('ok/never holds more than its burst however long it was idle', () => {
    const bucket = new TokenBucket(BucketRate.perMinute(6, 5), 0);
    for (let i = 0; i < 5; i++) bucket.take(1, 0);
    expect(bucket.tokens(365 * 86_400_000)).toBe(5);
    expect(bucket.isFull(365 * 86_400_000)).toBe(true);
  });

  it('fail/a clock stepping back refills nothing', () => {
    const bucket = new TokenBucket(BucketRate.perSecond(1, 1), 10_000);
    expect(bucket.take(1, 10_000)).toBe(true);
    expect(bucket.take(1, 5_000)).toBe(false);
    expect(bucket.take(1, 10_999)).toBe(false);
    expect(bucket.take(1, 11_000)).toBe(true);
  });

  it('fail/a penalty never pushes the bucket below its floor, so it always ends', () => {
    const bucket = new TokenBucket(BucketRate.perSecond(10, 10), 0);
    bucket.penalize(1_000_000, 0, 50);
    expect(bucket.tokens(0)).toBe(-50);
    expect(bucket.waitMs(1, 0)).toBe(5_100);
  });

  it('property: never allows more than burst + rate × elapsed, for any sequence of requests', () => {
    const request = fc.record({ advanceMs: fc.integer({ min: 0, max: 5_000 }), n: fc.integer({ min: 1, max: 50 }) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 100 }), fc.array(request, { maxLength: 200 }), (rate, burst, requests) => {
        const start = 1_700_000_000_000;
        const bucket = new TokenBucket(BucketRate.perSecond(rate, burst), start);
        let now = start;
        let granted = 0;
        for (const { advanceMs, n } of requests) {
          now += advanceMs;
          if (bucket.take(n, now)) granted += n;
          // Exact in integers: granted ≤ burst + rate × elapsed / 1000.
          expect(granted * 1000).toBeLessThanOrEqual(burst * 1000 + rate * (now - start));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: a caller steadily at (or just under) the rate is never refused once the burst is spent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 10_000 }), (rate, burst, start) => {
        const bucket = new TokenBucket(BucketRate.perSecond(rate, burst), start);
        for (let i = 0; i < burst; i++) expect(bucket.take(1, start)).toBe(true);
        // One token every ceil(1000 / rate) ms, the nearest whole-millisecond period at or under the rate.
        const period = Math.ceil(1000 / rate);
        for (let k = 1; k <= 50; k++) expect(bucket.take(1, start + k * period)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
