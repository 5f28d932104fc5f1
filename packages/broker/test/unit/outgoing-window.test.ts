import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/message.js';
import { flightTransitions, OutgoingWindow } from '../../src/session/outgoing-window.js';

const delivery = (qos: 1 | 2, payload = 'x'): Delivery => ({
  message: { topic: 't', payload: Buffer.from(payload), qos, retain: false, properties: undefined, expiresAt: undefined, publisher: undefined },
  qos,
  retain: false,
  subscriptionIds: undefined,
});

describe('the outgoing window of a session', () => {
  it('has one transition table: QoS 1 ends on PUBACK, QoS 2 on PUBCOMP after PUBREC, or on a refusing PUBREC', () => {
    expect(flightTransitions).toEqual({
      'awaiting-puback': { puback: 'done' },
      'awaiting-pubrec': { pubrec: 'awaiting-pubcomp', 'pubrec-refused': 'done' },
      'awaiting-pubcomp': { pubcomp: 'done' },
    });
  });

  it('MQTT-3.3.4-9: keeps no more messages in flight than the send quota, queuing the rest in order', () => {
    const window = new OutgoingWindow(10);
    window.setCapacity(2);
    const offers = [1, 2, 3, 4].map((n) => window.offer(delivery(1, String(n))));
    expect(offers.map((offer) => ('flight' in offer ? 'sent' : 'queued'))).toEqual(['sent', 'sent', 'queued', 'queued']);
    expect(window.dequeue()).toBeUndefined();
    const first = (offers[0] as { flight: { packetId: number } }).flight;
    expect(window.acknowledge(first.packetId, 'puback')).toBe('done');
    expect(window.dequeue()?.message.payload.toString()).toBe('3');
  });

  it('drops the oldest queued message beyond the queue limit', () => {
    const window = new OutgoingWindow(2);
    window.setCapacity(1);
    window.offer(delivery(1, 'in flight'));
    expect(window.offer(delivery(1, 'a'))).toEqual({ queued: true, dropped: undefined });
    window.offer(delivery(1, 'b'));
    const third = window.offer(delivery(1, 'c'));
    expect('dropped' in third && third.dropped?.message.payload.toString()).toBe('a');
    expect(window.takeQueue().map((queued) => queued.message.payload.toString())).toEqual(['b', 'c']);
  });

  it('MQTT-2.2.1-4: never reuses a Packet Identifier still in flight, and wraps after 65535', () => {
    const window = new OutgoingWindow(0);
    window.setCapacity(65_535);
    const held = window.start(delivery(1));
    const ids = new Set<number>([held.packetId]);
    for (let index = 0; index < 70_000; index++) {
      const flight = window.start(delivery(1));
      expect(flight.packetId).not.toBe(held.packetId);
      expect(flight.packetId).toBeGreaterThan(0);
      expect(flight.packetId).toBeLessThanOrEqual(65_535);
      window.acknowledge(flight.packetId, 'puback');
      ids.add(flight.packetId);
    }
    expect(ids.size).toBe(65_535);
  });

  it('MQTT-4.3.3-5, MQTT-4.4.0-2: walks a QoS 2 flight through PUBREC and PUBCOMP, and drops one refused by PUBREC', () => {
    const window = new OutgoingWindow(10);
    const flight = window.start(delivery(2));
    expect(window.acknowledge(flight.packetId, 'puback')).toBeUndefined();
    expect(window.acknowledge(flight.packetId, 'pubrec')).toBe('awaiting-pubcomp');
    expect(window.flights()[0]?.state).toBe('awaiting-pubcomp');
    expect(window.acknowledge(flight.packetId, 'pubcomp')).toBe('done');
    const refused = window.start(delivery(2));
    expect(window.acknowledge(refused.packetId, 'pubrec-refused')).toBe('done');
    expect(window.flights()).toEqual([]);
  });
});
