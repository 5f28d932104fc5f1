import { describe, expect, it } from 'vitest';
import { SessionTickets } from '../../src/gateway/session-tickets.js';
import { KeyRing } from '../../src/identity/key-ring.js';

const HOUR = 3_600_000;
const start = new Date('2026-12-05T00:00:00.000Z');
const at = (ms: number) => new Date(start.getTime() + ms);

describe('TLS session ticket keys (rule 3)', () => {
  const ring = KeyRing.generate(start);
  const tickets = new SessionTickets(ring, 24 * 3_600);

  it('are the same for every node sharing the key ring, within a period, for the same trusted CAs', () => {
    const keys = tickets.keysFor('CA-PEM', at(HOUR));
    expect(keys).toHaveLength(48);
    expect(new SessionTickets(ring, 24 * 3_600).keysFor('CA-PEM', at(23 * HOUR))).toEqual(keys);
  });

  it('change with the period, with the trusted CAs, and with the key ring (another ring or a rotated KEK)', () => {
    const keys = tickets.keysFor('CA-PEM', at(HOUR));
    expect(tickets.keysFor('CA-PEM', at(25 * HOUR))).not.toEqual(keys);
    expect(tickets.keysFor('CA-PEM\nANOTHER-CA', at(HOUR))).not.toEqual(keys);
    expect(new SessionTickets(KeyRing.generate(start), 24 * 3_600).keysFor('CA-PEM', at(HOUR))).not.toEqual(keys);
    expect(new SessionTickets(ring.withNewActiveKey(start), 24 * 3_600).keysFor('CA-PEM', at(HOUR))).not.toEqual(keys);
  });

  it('say when the next period starts', () => {
    expect(tickets.msUntilRotation(at(HOUR))).toBe(23 * HOUR);
    expect(tickets.msUntilRotation(at(24 * HOUR))).toBe(24 * HOUR);
  });
});
