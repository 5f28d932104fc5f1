import { describe, expect, it } from 'vitest';
import { Outages } from '../../src/health/outages.js';

// Rule 6, fail closed: how long a dependency has been away, and when live sessions must stop trusting their last policy.
describe('outages', () => {
  it('ok/reachable: nothing changes and nothing is expired', () => {
    const outages = new Outages(2_000);
    expect(outages.observe('database', true, 0)).toBeNull();
    expect(outages.observe('redis', true, 10_000)).toBeNull();
    expect(outages.expired()).toBeNull();
  });

  it('fail/down then past the bound: down once, expired once (strictly after the bound), then up with what happened', () => {
    const outages = new Outages(2_000);
    expect(outages.observe('redis', false, 1_000)).toEqual({ kind: 'down', dependency: 'redis', at: 1_000 });
    expect(outages.observe('redis', false, 2_000)).toBeNull();
    // Exactly the bound: a session may live through an outage as long as the bound.
    expect(outages.observe('redis', false, 3_000)).toBeNull();
    expect(outages.expired()).toBeNull();
    expect(outages.observe('redis', false, 3_001)).toEqual({ kind: 'expired', dependency: 'redis', since: 1_000, at: 3_001 });
    expect(outages.observe('redis', false, 9_000)).toBeNull();
    expect(outages.expired()).toBe('redis');
    expect(outages.of('redis')).toEqual({ since: 1_000, expired: true });
    expect(outages.observe('redis', true, 10_000)).toEqual({ kind: 'up', dependency: 'redis', since: 1_000, at: 10_000, expired: true });
    expect(outages.expired()).toBeNull();
    expect(outages.of('redis')).toBeUndefined();
  });

  it('ok/short outage: back within the bound, never expired', () => {
    const outages = new Outages(2_000);
    outages.observe('database', false, 0);
    expect(outages.observe('database', true, 1_500)).toEqual({ kind: 'up', dependency: 'database', since: 0, at: 1_500, expired: false });
    // A new outage starts its own count.
    outages.observe('database', false, 5_000);
    expect(outages.observe('database', false, 6_000)).toBeNull();
    expect(outages.expired()).toBeNull();
  });

  it('each dependency is counted on its own', () => {
    const outages = new Outages(1_000);
    outages.observe('database', false, 0);
    outages.observe('redis', false, 500);
    expect(outages.observe('database', false, 1_001)?.kind).toBe('expired');
    expect(outages.observe('redis', false, 1_001)).toBeNull();
    outages.observe('database', true, 1_200);
    expect(outages.expired()).toBeNull();
    expect(outages.observe('redis', false, 1_501)?.kind).toBe('expired');
    expect(outages.expired()).toBe('redis');
  });

  it('fail/a bound that is not a whole number of ms is refused', () => {
    expect(() => new Outages(-1)).toThrow(RangeError);
    expect(() => new Outages(1.5)).toThrow(RangeError);
  });
});
