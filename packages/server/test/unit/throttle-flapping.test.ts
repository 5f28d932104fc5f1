import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlappingDetector } from '../../src/access/throttling/flapping-detector.js';

/** The semantics, plainly: flapping when the last `maxConnects` connects since the last ban fit in the window. */
function referenceVerdicts(maxConnects: number, windowMs: number, times: readonly number[]): boolean[] {
  let history: number[] = [];
  return times.map((now) => {
    history.push(now);
    const oldest = history[history.length - maxConnects];
    if (oldest === undefined || now - oldest >= windowMs) return false;
    history = [];
    return true;
  });
}

describe('throttle: flapping detection', () => {
  it('matches the exact sliding window over any connect sequence (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 5_000 }), fc.array(fc.integer({ min: 0, max: 2_000 }), { maxLength: 200 }), (maxConnects, windowMs, gaps) => {
        const detector = new FlappingDetector({ maxConnects, windowMs, banMs: 60_000, maxTrackedThings: 10 });
        const times = gaps.reduce<number[]>((acc, gap) => [...acc, (acc.at(-1) ?? 0) + gap], []);
        const verdicts = times.map((now) => detector.record('thing-1', now).flapping);
        expect(verdicts).toEqual(referenceVerdicts(maxConnects, windowMs, times));
      }),
    );
  });

  it('fail/a reconnect loop is flapping at the limit, with the ban ending banMs later', () => {
    const detector = new FlappingDetector({ maxConnects: 3, windowMs: 10_000, banMs: 60_000, maxTrackedThings: 10 });
    expect(detector.record('loop', 0).flapping).toBe(false);
    expect(detector.record('loop', 1_000).flapping).toBe(false);
    expect(detector.record('loop', 2_000)).toEqual({ flapping: true, banUntil: 62_000 });
    // The count restarts after a ban.
    expect(detector.record('loop', 70_000).flapping).toBe(false);
  });

  it('a high limit costs memory per connect made, not per connect allowed', () => {
    // Operators may allow thousands of connects per window; 10,000 things connecting once each must stay cheap.
    const detector = new FlappingDetector({ maxConnects: 10_000, windowMs: 60_000, banMs: 60_000, maxTrackedThings: 100_000 });
    const used = (): number => {
      const { heapUsed, external } = process.memoryUsage();
      return heapUsed + external;
    };
    const before = used();
    for (let i = 0; i < 10_000; i++) detector.record(`thing-${i}`, i);
    // A preallocated ring would take 10,000 × 80 KB = 800 MB here.
    expect(used() - before).toBeLessThan(50 * 1024 * 1024);
    expect(detector.stats().tracked).toBe(10_000);
  });
});
