import { describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../src/access/auth-throttle.js';

describe('failed-authentication throttle', () => {
  it('blocks a source after `limit` failures within the window, until a window after its last failure', () => {
    const throttle = new FailureThrottle({ limit: 3, windowMs: 60_000 });
    expect(throttle.recordFailure('192.0.2.1', 0)).toEqual({ blocked: false, newlyBlocked: false });
    throttle.recordFailure('192.0.2.1', 1000);
    expect(throttle.blockedUntil('192.0.2.1', 1500)).toBeNull();
    expect(throttle.recordFailure('192.0.2.1', 2000)).toEqual({ blocked: true, newlyBlocked: true });
    expect(throttle.blockedUntil('192.0.2.1', 3000)).toBe(62_000);
    expect(throttle.blockedUntil('192.0.2.1', 61_999)).toBe(62_000);
    expect(throttle.blockedUntil('192.0.2.1', 62_000)).toBeNull();
    // A failure after the block ends starts counting afresh from the failures still in the window.
    expect(throttle.recordFailure('192.0.2.1', 62_500)).toEqual({ blocked: false, newlyBlocked: false });
  });

  it('counts sources separately, and failures spread wider than the window never block', () => {
    const throttle = new FailureThrottle({ limit: 3, windowMs: 10_000 });
    for (let i = 0; i < 10; i++) throttle.recordFailure('192.0.2.1', i * 6000);
    expect(throttle.blockedUntil('192.0.2.1', 60_000)).toBeNull();
    for (let i = 0; i < 3; i++) throttle.recordFailure('192.0.2.2', 100_000 + i);
    expect(throttle.blockedUntil('192.0.2.2', 100_010)).not.toBeNull();
    expect(throttle.blockedUntil('192.0.2.3', 100_010)).toBeNull();
  });

  it('counts an IPv6 /64 as one source, and an IPv4-mapped address as its IPv4 address', () => {
    const throttle = new FailureThrottle({ limit: 2, windowMs: 10_000 });
    throttle.recordFailure('2001:db8:1:2::a', 0);
    throttle.recordFailure('2001:db8:1:2:ffff::b', 1);
    expect(throttle.blockedUntil('2001:db8:1:2::c', 2)).not.toBeNull();
    expect(throttle.blockedUntil('2001:db8:1:3::c', 2)).toBeNull();
    throttle.recordFailure('::ffff:192.0.2.9', 0);
    throttle.recordFailure('192.0.2.9', 1);
    expect(throttle.blockedUntil('192.0.2.9', 2)).not.toBeNull();
  });

  it('keeps memory bounded under a flood of distinct sources', () => {
    const throttle = new FailureThrottle({ limit: 2, windowMs: 60_000, maxSources: 100 });
    for (let i = 0; i < 10_000; i++) throttle.recordFailure(`10.0.${Math.floor(i / 256)}.${i % 256}`, i);
    // The newest sources are still tracked; the oldest were forgotten.
    throttle.recordFailure('10.0.39.15', 20_000);
    expect(throttle.blockedUntil('10.0.39.15', 20_001)).not.toBeNull();
    expect(throttle.blockedUntil('10.0.0.0', 20_001)).toBeNull();
  });
});
