import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Delivery, Message, Persistence, StoredSession } from '@fleetward/broker';

const message = (topic: string, payload: string, extra: Partial<Message> = {}): Message => ({
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  retain: false,
  properties: undefined,
  expiresAt: undefined,
  publisher: 'publisher',
  ...extra,
});

const delivery = (payload: string): Delivery => ({ message: message('q', payload), qos: 1, retain: false, subscriptionIds: [4] });

/** Every byte value, twice: what a store keeping strings instead of bytes would corrupt. */
const allBytes = Buffer.from([...Array(512).keys()].map((index) => index % 256));

/** A message using every field, with binary payload and correlation data. */
const binary = (topic: string): Message =>
  message(topic, '', {
    payload: allBytes,
    qos: 2,
    retain: true,
    expiresAt: 4_102_444_800_000,
    publisher: undefined,
    properties: {
      payloadFormatIndicator: false,
      contentType: 'application/octet-stream',
      responseTopic: 'reply/here',
      correlationData: Buffer.from([0, 255, 128, 0]),
      userProperties: { a: ['1', '3'], b: '2', 'ünï': 'cödé' },
    },
  });

const session = (clientId: string): StoredSession => ({
  clientId,
  expiryIntervalSeconds: 60,
  expiresAt: 1_700_000_060_000,
  subscriptions: [{ filter: '$share/g/a/+', pattern: 'a/+', shareGroup: 'g', qos: 1, noLocal: false, retainAsPublished: true, retainHandling: 2, subscriptionId: 12 }],
  flights: [{ packetId: 7, state: 'awaiting-pubcomp', delivery: delivery('in flight') }],
  incomingQos2: [3, 9],
});

/**
 * The contract every Persistence must keep: one suite, run against the in-memory store and the
 * Redis store. `create` gives a fresh, empty store for each test.
 */
export function describePersistence(name: string, create: () => Promise<Persistence>): void {
  describe(`${name} persistence`, () => {
    let persistence: Persistence;
    beforeEach(async () => {
      persistence = await create();
    });
    afterEach(() => persistence.close());

    describe('sessions', () => {
      it('stores, returns, replaces and deletes a session with its subscriptions, flights and QoS 2 ids', async () => {
        expect(await persistence.sessions.get('c1')).toBeUndefined();
        await persistence.sessions.put(session('c1'));
        expect(await persistence.sessions.get('c1')).toEqual(session('c1'));
        await persistence.sessions.put({ ...session('c1'), subscriptions: [], flights: [] });
        expect(await persistence.sessions.get('c1')).toMatchObject({ subscriptions: [], flights: [] });
        await persistence.sessions.delete('c1');
        expect(await persistence.sessions.get('c1')).toBeUndefined();
      });

      it('lists every stored session', async () => {
        await persistence.sessions.put(session('c1'));
        await persistence.sessions.put(session('c2'));
        const listed: string[] = [];
        for await (const stored of persistence.sessions.list()) listed.push(stored.clientId);
        expect(listed.sort()).toEqual(['c1', 'c2']);
      });

      it('keeps a copy that later changes to the caller objects do not reach', async () => {
        const original = session('c1');
        const payload = Buffer.from('in flight');
        await persistence.sessions.put({ ...original, flights: [{ packetId: 1, state: 'awaiting-puback', delivery: { ...delivery('x'), message: message('q', 'x', { payload }) } }] });
        payload.fill(0);
        expect((await persistence.sessions.get('c1'))?.flights[0]?.delivery.message.payload.toString()).toBe('in flight');
      });

      it('keeps binary payloads, every property and every flight state exactly, and a session still connected (no expiry)', async () => {
        const stored: StoredSession = {
          ...session('bin'),
          expiresAt: undefined,
          expiryIntervalSeconds: 0xffff_ffff,
          subscriptions: [
            { filter: 'a/#', pattern: 'a/#', shareGroup: undefined, qos: 0, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionId: undefined },
            { filter: '$share/g/+', pattern: '+', shareGroup: 'g', qos: 2, noLocal: false, retainAsPublished: true, retainHandling: 0, subscriptionId: 268_435_455 },
          ],
          flights: [
            { packetId: 1, state: 'awaiting-puback', delivery: { message: binary('f/1'), qos: 1, retain: false, subscriptionIds: undefined } },
            { packetId: 65_535, state: 'awaiting-pubrec', delivery: { message: binary('f/2'), qos: 2, retain: true, subscriptionIds: [1, 2] } },
            { packetId: 3, state: 'awaiting-pubcomp', delivery: delivery('released') },
          ],
          incomingQos2: [1, 65_535],
        };
        await persistence.sessions.put(stored);
        expect(await persistence.sessions.get('bin')).toEqual(stored);
      });

      it('lists many sessions, each once', async () => {
        const ids = [...Array(1200).keys()].map((index) => `many-${index}`);
        await Promise.all(ids.map((id) => persistence.sessions.put({ ...session(id), flights: [] })));
        const listed: string[] = [];
        for await (const stored of persistence.sessions.list()) listed.push(stored.clientId);
        expect(listed.sort()).toEqual(ids.sort());
      });
    });

    describe('queues', () => {
      it('keeps deliveries in order and hands them over once', async () => {
        for (const payload of ['1', '2', '3']) expect(await persistence.queues.push('c1', delivery(payload), 10)).toBe(0);
        const taken = await persistence.queues.take('c1');
        expect(taken.map((queued) => queued.message.payload.toString())).toEqual(['1', '2', '3']);
        expect(taken[0]).toMatchObject({ qos: 1, retain: false, subscriptionIds: [4] });
        expect(await persistence.queues.take('c1')).toEqual([]);
      });

      it('drops the oldest beyond the limit and says how many', async () => {
        for (const payload of ['1', '2', '3']) await persistence.queues.push('c1', delivery(payload), 2);
        expect(await persistence.queues.push('c1', delivery('4'), 2)).toBe(1);
        expect((await persistence.queues.take('c1')).map((queued) => queued.message.payload.toString())).toEqual(['3', '4']);
      });

      it('clears a queue, and keeps queues of clients apart', async () => {
        await persistence.queues.push('c1', delivery('1'), 10);
        await persistence.queues.push('c2', delivery('2'), 10);
        await persistence.queues.clear('c1');
        expect(await persistence.queues.take('c1')).toEqual([]);
        expect(await persistence.queues.take('c2')).toHaveLength(1);
      });

      it('keeps binary deliveries exactly', async () => {
        const queued: Delivery = { message: binary('b'), qos: 2, retain: true, subscriptionIds: undefined };
        await persistence.queues.push('c1', queued, 10);
        expect(await persistence.queues.take('c1')).toEqual([queued]);
      });

      it('keeps nothing with a limit of 0, and counts the drop', async () => {
        expect(await persistence.queues.push('c1', delivery('1'), 0)).toBe(1);
        expect(await persistence.queues.take('c1')).toEqual([]);
      });
    });

    describe('retained messages', () => {
      it('MQTT-3.3.1-5: keeps the last retained message per topic, with its QoS and properties', async () => {
        expect(await persistence.retained.put(message('a/b', 'first'), 10)).toBe('stored');
        const properties = { contentType: 'text/plain', userProperties: { k: 'v' } };
        await persistence.retained.put(message('a/b', 'second', { qos: 2, properties }), 10);
        expect(await persistence.retained.match('a/b', 0)).toEqual([message('a/b', 'second', { qos: 2, properties })]);
      });

      it('MQTT-3.3.1-6, MQTT-3.3.1-7: an empty payload deletes the retained message and is not stored', async () => {
        await persistence.retained.put(message('a/b', 'kept'), 10);
        expect(await persistence.retained.put(message('a/b', ''), 10)).toBe('deleted');
        expect(await persistence.retained.match('#', 0)).toEqual([]);
      });

      it('matches filters with wildcards, never a $ topic by a leading wildcard (MQTT-4.7.2-1)', async () => {
        for (const topic of ['a/b', 'a/c/d', '$SYS/x', 'b']) await persistence.retained.put(message(topic, topic), 10);
        const topics = async (pattern: string) => (await persistence.retained.match(pattern, 0)).map((found) => found.topic).sort();
        expect(await topics('#')).toEqual(['a/b', 'a/c/d', 'b']);
        expect(await topics('a/+')).toEqual(['a/b']);
        expect(await topics('a/#')).toEqual(['a/b', 'a/c/d']);
        expect(await topics('+/#')).toEqual(['a/b', 'a/c/d', 'b']);
        expect(await topics('$SYS/#')).toEqual(['$SYS/x']);
      });

      it('keeps a binary retained message exactly, under a topic with multi-byte characters', async () => {
        await persistence.retained.put(binary('ünï/cödé'), 10);
        expect(await persistence.retained.match('ünï/+', 0)).toEqual([binary('ünï/cödé')]);
      });

      it('MQTT-4.7.1-1: `#` also matches the parent level, and nothing merely sharing a prefix', async () => {
        for (const topic of ['a', 'a/b', 'a/b/c', 'ab', 'a0/b', 'a!', 'b/a']) await persistence.retained.put(message(topic, topic), 10);
        const topics = async (pattern: string) => (await persistence.retained.match(pattern, 0)).map((found) => found.topic).sort();
        expect(await topics('a/#')).toEqual(['a', 'a/b', 'a/b/c']);
        expect(await topics('a/+')).toEqual(['a/b']);
        expect(await topics('a/b/#')).toEqual(['a/b', 'a/b/c']);
        expect(await topics('+/a')).toEqual(['b/a']);
        expect(await topics('a')).toEqual(['a']);
        expect(await topics('nothing/#')).toEqual([]);
      });

      it('matches among many retained messages', async () => {
        const topics = [...Array(1500).keys()].map((index) => `many/${index}`);
        await Promise.all(topics.map((topic) => persistence.retained.put(message(topic, topic), 2000)));
        expect((await persistence.retained.match('many/+', 0)).map((found) => found.topic).sort()).toEqual(topics.sort());
      });

      it('refuses a new topic beyond the limit, while replacing an existing one', async () => {
        await persistence.retained.put(message('a', '1'), 2);
        await persistence.retained.put(message('b', '1'), 2);
        expect(await persistence.retained.put(message('c', '1'), 2)).toBe('full');
        expect(await persistence.retained.put(message('a', '2'), 2)).toBe('stored');
        expect(await persistence.retained.put(message('a', ''), 2)).toBe('deleted');
        expect(await persistence.retained.put(message('c', '1'), 2)).toBe('stored');
        expect(await persistence.retained.put(message('d', '1'), 0)).toBe('full');
      });

      it('MQTT 3.3.1.3: leaves out, and forgets, retained messages that have expired', async () => {
        await persistence.retained.put(message('e/1', 'expires', { expiresAt: 1000 }), 10);
        await persistence.retained.put(message('e/2', 'lasts', { expiresAt: 5000 }), 10);
        expect((await persistence.retained.match('e/+', 2000)).map((found) => found.topic)).toEqual(['e/2']);
        expect((await persistence.retained.match('e/+', 0)).map((found) => found.topic)).toEqual(['e/2']);
      });
    });
  });
}
