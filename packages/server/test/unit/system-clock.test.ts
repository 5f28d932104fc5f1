import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';

/** The per-message clock the gateway reads: shared within one synchronous run, never staler than it. */
describe('systemClock.nowMs', () => {
  it('gives every read of one synchronous run the same reading, taken at its first read', () => {
    const before = Date.now();
    const first = systemClock.nowMs();
    const spinUntil = Date.now() + 5;
    while (Date.now() < spinUntil) {
      // A run that takes a while: the reading stays the one taken at its start.
    }
    expect(systemClock.nowMs()).toBe(first);
    expect(first).toBeGreaterThanOrEqual(before);
    expect(first).toBeLessThanOrEqual(Date.now());
  });

  it('reads the time again in the next run, so a reading is never older than the run that took it', async () => {
    const first = systemClock.nowMs();
    await sleep(20);
    const later = systemClock.nowMs();
    expect(later - first).toBeGreaterThanOrEqual(15);
    expect(Math.abs(later - Date.now())).toBeLessThanOrEqual(1);
  });

  it('ends a run at the next microtask: a promise continuation reads afresh', async () => {
    const first = systemClock.nowMs();
    const spinUntil = Date.now() + 5;
    while (Date.now() < spinUntil) {
      // Time passes inside the run.
    }
    await Promise.resolve();
    expect(systemClock.nowMs()).toBeGreaterThanOrEqual(first + 5);
  });
});
