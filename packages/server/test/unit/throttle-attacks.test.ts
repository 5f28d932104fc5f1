import { describe, expect, it } from 'vitest';
import { DEFAULT_THROTTLE_SETTINGS, Throttle, type ThrottleSettings } from '../../src/access/throttling/index.js';

const T0 = 1_700_000_000_000;

function throttle(overrides: Partial<ThrottleSettings> = {}): Throttle {
  return new Throttle({ ...DEFAULT_THROTTLE_SETTINGS, ...overrides }, T0);
}

function handshakeCounts(t: Throttle, source: string, attempts: number, at: number): { accept: number; delay: number; refuse: number } {
  const counts = { accept: 0, delay: 0, refuse: 0 };
  for (let i = 0; i < attempts; i++) counts[t.allowHandshake(source, at).action]++;
  return counts;
}

describe('throttle: TLS handshakes per source, before authentication', () => {
  it('fail/a flood from one source is held, then refused; other sources are unaffected', () => {
    const t = throttle({ handshakeBurstPerSource: 20, handshakesPerMinutePerSource: 60, handshakeMaxDelayMs: 5_000 });
    const flood = handshakeCounts(t, '198.51.100.9', 10_000, T0);
    // Burst 20 at once, 5 s of 1/s held back (booked), everything else closed before TLS.
    expect(flood).toEqual({ accept: 20, delay: 5, refuse: 9_975 });
    expect(t.allowHandshake('198.51.100.10', T0)).toEqual({ action: 'accept' });
    expect(t.allowHandshake('2001:db8:1:2::5', T0)).toEqual({ action: 'accept' });
    expect(t.stats().refusals['handshake-rate']).toBe(9_975);
  });

  it('fail/an attacker rotating addresses inside one IPv6 /64 is one source', () => {
    const t = throttle({ handshakeBurstPerSource: 10, handshakeMaxDelayMs: 0 });
    const results = Array.from({ length: 50 }, (_, i) => t.allowHandshake(`2001:db8:aa:bb::${(i + 1).toString(16)}`, T0).action);
    expect(results.filter((a) => a === 'accept')).toHaveLength(10);
    expect(t.allowHandshake('2001:db8:aa:bc::1', T0).action).toBe('accept');
  });

  it('fail/an IPv4-mapped address shares the budget of its IPv4 address', () => {
    const t = throttle({ handshakeBurstPerSource: 2, handshakeMaxDelayMs: 0 });
    t.allowHandshake('192.0.2.1', T0);
    t.allowHandshake('::ffff:192.0.2.1', T0);
    expect(t.allowHandshake('192.0.2.1', T0).action).toBe('refuse');
  });

  it('fail/failed handshakes cost their source more than successful ones', () => {
    const t = throttle({ handshakeBurstPerSource: 10, handshakeFailurePenalty: 5, handshakeMaxDelayMs: 0 });
    t.allowHandshake('192.0.2.66', T0);
    t.onHandshakeFailed('192.0.2.66', T0);
    expect(handshakeCounts(t, '192.0.2.66', 10, T0).accept).toBe(4);
  });

  it('ok/the node budget bounds all sources together', () => {
    const t = throttle({ handshakesPerSecond: 100, handshakeBurst: 100, handshakeMaxDelayMs: 0 });
    const accepted = Array.from({ length: 1_000 }, (_, i) => t.allowHandshake(`10.1.${i >> 8}.${i & 255}`, T0)).filter((d) => d.action === 'accept');
    expect(accepted).toHaveLength(100);
    expect(t.stats().refusals['handshake-budget']).toBe(900);
  });
});

describe('throttle: connects', () => {
  it('fail/a flapping client is banned, refused during the ban, and allowed after it', () => {
    const t = throttle({ flappingMaxConnects: 5, flappingWindowMs: 60_000, flappingBanMs: 300_000, connectBurstPerThing: 100 });
    for (let i = 0; i < 4; i++) {
      expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + i * 1000)).toBe('ok');
      t.onDisconnect('dev-1', 'dev-1');
    }
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 4_000)).toBe('flapping');
    expect(t.bans(T0 + 4_000)).toMatchObject([{ target: { kind: 'thing', value: 'dev-1' }, reason: 'flapping', expiresAt: T0 + 304_000 }]);
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 303_999)).toBe('flapping');
    expect(t.allowConnect('dev-2', 'dev-2', '192.0.2.1', T0 + 5_000)).toBe('ok');
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 304_000)).toBe('ok');
    expect(t.stats().connections).toBe(2);
  });

  it('fail/retries while banned do not extend the ban', () => {
    const t = throttle({ flappingMaxConnects: 2, connectBurstPerThing: 100, connectsPerMinutePerThing: 6_000 });
    t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0);
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 1)).toBe('flapping');
    for (let i = 2; i < 1_000; i++) t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + i * 100);
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 1 + DEFAULT_THROTTLE_SETTINGS.flappingBanMs)).toBe('ok');
  });

  it('ok/an operator lifts a flapping ban at once', () => {
    const t = throttle({ flappingMaxConnects: 2 });
    t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0);
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 1)).toBe('flapping');
    expect(t.unban({ kind: 'thing', value: 'dev-1' })).toBe(true);
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 2)).toBe('ok');
  });

  it('fail/operator bans by thing, client id, address and block, with expiry', () => {
    const t = throttle();
    t.ban({ kind: 'client-id', value: 'rogue' }, { expiresAt: T0 + 60_000, by: 'alice' }, T0);
    t.ban({ kind: 'address', value: '203.0.113.0/24' }, { expiresAt: null }, T0);
    expect(t.allowConnect('dev-1', 'rogue', '192.0.2.1', T0)).toBe('banned');
    expect(t.allowConnect('dev-1', 'rogue', '192.0.2.1', T0 + 60_000)).toBe('ok');
    expect(t.allowHandshake('203.0.113.77', T0)).toEqual({ action: 'refuse', refusal: 'address-banned' });
    expect(t.allowHandshake('203.0.114.1', T0).action).toBe('accept');
    expect(() => t.ban({ kind: 'address', value: 'not-an-address' }, { expiresAt: null }, T0)).toThrow(RangeError);
  });

  it('fail/a reconnect loop is refused at the connect rate, without tokens for refused connects', () => {
    const t = throttle({ connectBurstPerThing: 3, connectsPerMinutePerThing: 6 });
    const verdicts = Array.from({ length: 5 }, (_, i) => {
      const v = t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + i);
      if (v === 'ok') t.onDisconnect('dev-1', 'dev-1');
      return v;
    });
    expect(verdicts).toEqual(['ok', 'ok', 'ok', 'connect-rate', 'connect-rate']);
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0 + 10_000)).toBe('ok');
  });

  it('ok/a full node refuses with server-full, and retrying against it costs no connect token', () => {
    const t = throttle({ maxConnections: 1, connectBurstPerThing: 2 });
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0)).toBe('ok');
    for (let i = 0; i < 20; i++) expect(t.allowConnect('dev-2', 'dev-2', '192.0.2.2', T0 + i)).toBe('server-full');
    t.onDisconnect('dev-1', 'dev-1');
    expect(t.allowConnect('dev-2', 'dev-2', '192.0.2.2', T0 + 20)).toBe('ok');
  });

  it('ok/a takeover under the same client id passes the caps; a second client id of the thing does not', () => {
    const t = throttle({ maxConnections: 10, maxConnectionsPerThing: 1 });
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.1', T0)).toBe('ok');
    expect(t.allowConnect('dev-1', 'dev-1', '192.0.2.9', T0 + 1)).toBe('ok');
    t.onDisconnect('dev-1', 'dev-1');
    expect(t.allowConnect('dev-1', 'dev-1-b', '192.0.2.1', T0 + 2)).toBe('thing-full');
    expect(t.stats().connections).toBe(1);
  });
});

describe('throttle: publish and subscribe', () => {
  it('fail/a publish flood is refused at the rate, then disconnected; other devices are unaffected', () => {
    const t = throttle({ messagesPerSecond: 10, messageBurst: 10, rateDisconnectAfterRefusals: 3 });
    const verdicts = Array.from({ length: 15 }, () => t.allowPublish('flood', 10, T0));
    expect(verdicts.slice(0, 10).every((v) => v === 'ok')).toBe(true);
    expect(verdicts.slice(10)).toEqual(['message-rate', 'message-rate', 'message-rate', 'rate-disconnect', 'rate-disconnect']);
    expect(t.allowPublish('quiet', 10, T0)).toBe('ok');
    expect(t.allowPublish('flood', 10, T0 + 100)).toBe('ok');
  });

  it('fail/bytes per second and payload size are limited separately from messages', () => {
    const t = throttle({ bytesPerSecond: 1_000, byteBurst: 1_000, maxPayloadBytes: 600 });
    expect(t.allowPublish('dev-1', 601, T0)).toBe('payload-too-large');
    expect(t.allowPublish('dev-1', 600, T0)).toBe('ok');
    expect(t.allowPublish('dev-1', 600, T0)).toBe('byte-rate');
    expect(t.allowPublish('dev-1', 400, T0)).toBe('ok');
    // A refused message took no tokens: 1,000 bytes/s gives 100 bytes after 100 ms.
    expect(t.allowPublish('dev-1', 100, T0 + 100)).toBe('ok');
  });

  it('fail/subscriptions beyond the limit are refused', () => {
    const t = throttle({ maxSubscriptionsPerThing: 2 });
    expect(t.allowSubscribe('dev-1', 1, T0)).toBe('ok');
    expect(t.allowSubscribe('dev-1', 2, T0)).toBe('too-many-subscriptions');
    expect(t.engineLimits).toEqual({ receiveMaximum: 64, maxInflightMessages: 64 });
  });
});

describe('throttle: bounded memory', () => {
  it('ok/1e5 distinct sources and things never grow state past the configured bounds', () => {
    const t = throttle({ maxTrackedSources: 1_000, maxTrackedThings: 1_000, maxAuditKeys: 100, handshakeMaxDelayMs: 0, handshakeBurstPerSource: 1, maxPayloadBytes: 10, byteBurst: 10, messageBurst: 1 });
    for (let i = 0; i < 100_000; i++) {
      // Half IPv4 addresses, half IPv6 /64s: every one a distinct source.
      const address = i % 2 === 0 ? `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}` : `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
      t.allowHandshake(address, T0);
      t.allowPublish(`thing-${i}`, 1, T0);
      t.allowPublish(`thing-${i}`, 1, T0);
    }
    const stats = t.stats();
    expect(stats.trackedSources).toBeLessThanOrEqual(1_000);
    expect(stats.trackedThings).toBeLessThanOrEqual(1_000);
    // Entries refill and are forgotten: an idle node holds nothing.
    t.tick(T0 + 3_600_000);
    expect(t.stats()).toMatchObject({ trackedSources: 0, trackedThings: 0 });
  });

  it('fail/devices beyond the table share a stricter overflow bucket, never a fresh burst', () => {
    const t = throttle({ maxTrackedThings: 1_000, messageBurst: 1, messagesPerSecond: 1 });
    for (let i = 0; i < 1_000; i++) expect(t.allowPublish(`thing-${i}`, 1, T0)).toBe('ok');
    const overflow = Array.from({ length: 100 }, (_, i) => t.allowPublish(`late-${i}`, 1, T0));
    expect(overflow.filter((v) => v === 'ok').length).toBeLessThanOrEqual(1);
    expect(t.stats().overflowDecisions).toBe(100);
  });
});
