import { describe, expect, it } from 'vitest';
import { DEFAULT_THROTTLE_SETTINGS, Throttle } from '../../src/access/throttling/index.js';

const T0 = 1_700_000_000_000;
const DEVICES = 10_000;
const STEP_MS = 10;
const HANDSHAKE_MS = 20;
const ATTACKER = '203.0.113.66';

/** Deterministic PRNG (mulberry32), so the storm is the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Device {
  readonly name: string;
  readonly address: string;
  attempts: number;
  connectedAt: number | null;
}

/** 9,000 devices on their own addresses, 1,000 behind two NAT addresses (a site, a carrier gateway). */
function fleet(): Device[] {
  return Array.from({ length: DEVICES }, (_, i) => ({
    name: `dev-${i}`,
    address: i < 9_000 ? `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}` : i % 2 === 0 ? '198.51.100.1' : '2001:db8:5:6::1',
    attempts: 0,
    connectedAt: null,
  }));
}

/**
 * Replays a node restart: every device reconnects within the first second and, when its TCP
 * connection is closed before TLS, retries with capped exponential backoff and jitter (what the
 * agent and common MQTT clients do). Meanwhile one address floods handshakes that all fail.
 */
function storm(): { throttle: Throttle; devices: Device[]; end: number; attacker: { accepted: number; attempts: number } } {
  const throttle = new Throttle(DEFAULT_THROTTLE_SETTINGS, T0);
  const next = random(42);
  const devices = fleet();
  const due = new Map<number, Device[]>();
  const at = (time: number, device: Device): void => {
    const step = Math.ceil(time / STEP_MS) * STEP_MS;
    const list = due.get(step);
    if (list === undefined) due.set(step, [device]);
    else list.push(device);
  };
  for (const device of devices) at(T0 + Math.floor(next() * 1_000), device);
  const attacker = { accepted: 0, attempts: 0 };
  let connected = 0;
  let now = T0;
  for (; connected < DEVICES && now < T0 + 600_000; now += STEP_MS) {
    // The flood: 10 handshakes every 10 ms (1,000/s); those let through fail (no valid certificate).
    for (let i = 0; i < 10; i++, attacker.attempts++) {
      if (throttle.allowHandshake(ATTACKER, now).action === 'refuse') continue;
      attacker.accepted++;
      throttle.onHandshakeFailed(ATTACKER, now);
    }
    for (const device of due.get(now) ?? []) {
      device.attempts++;
      const decision = throttle.allowHandshake(device.address, now);
      if (decision.action === 'refuse') {
        const backoff = Math.min(30_000, 1_000 * 2 ** Math.min(device.attempts - 1, 5));
        at(now + backoff * (0.5 + next() / 2), device);
        continue;
      }
      const connectAt = now + (decision.action === 'delay' ? decision.delayMs : 0) + HANDSHAKE_MS;
      const verdict = throttle.allowConnect(device.name, device.name, device.address, connectAt);
      if (verdict !== 'ok') throw new Error(`${device.name} refused at CONNECT: ${verdict}`);
      device.connectedAt = connectAt;
      connected++;
    }
    due.delete(now);
  }
  return { throttle, devices, end: now, attacker };
}

describe('throttle: reconnect storm after a node restart (default settings)', () => {
  const result = storm();

  it('ok/all 10,000 legitimate devices get in, within two minutes, none refused at CONNECT', () => {
    const unconnected = result.devices.filter((d) => d.connectedAt === null);
    expect(unconnected).toHaveLength(0);
    expect(result.end - T0).toBeLessThan(120_000);
    expect(result.throttle.stats().connections).toBe(DEVICES);
  });

  it('ok/no device is banned, and nothing blocks a device once it has backed off', () => {
    expect(result.throttle.bans(result.end)).toEqual([]);
    const refusals = result.throttle.stats().refusals;
    expect(refusals.flapping + refusals.banned + refusals['connect-rate'] + refusals['server-full']).toBe(0);
    // Devices behind one NAT address wait longest, but a bounded number of retries.
    expect(Math.max(...result.devices.map((d) => d.attempts))).toBeLessThanOrEqual(12);
  });

  it('fail/the flooding source is blunted to its burst and rate, less its failure penalties', () => {
    const elapsedMinutes = (result.end - T0) / 60_000;
    const { handshakeBurstPerSource, handshakesPerMinutePerSource } = DEFAULT_THROTTLE_SETTINGS;
    expect(result.attacker.accepted).toBeLessThanOrEqual(handshakeBurstPerSource + Math.ceil(handshakesPerMinutePerSource * elapsedMinutes));
    expect(result.attacker.accepted / result.attacker.attempts).toBeLessThan(0.05);
  });

  it('ok/after the storm, every source refills: an idle node forgets them all', () => {
    result.throttle.tick(result.end + 3_600_000);
    expect(result.throttle.stats().trackedSources).toBe(0);
  });
});
