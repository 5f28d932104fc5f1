import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connectRedisPersistence, type Delivery, type Persistence, type StoredSession } from '@fleetward/broker';
import { adminRedis, deleteRunKeys, REDIS_URL, runPrefix } from '../helpers/redis.js';
import { closeClients, connectClient, connectCollecting, startBroker, unique, waitFor, type TestBroker } from '../helpers/test-broker.js';
import { describePersistence } from './persistence-conformance.js';

const prefix = runPrefix('persistence');
let store = 0;
const freshPrefix = (): string => `${prefix}${++store}:`;

// A fresh prefix per test gives each one an empty store; the run's keys are deleted at the end.
describePersistence('Redis', () => connectRedisPersistence({ connection: REDIS_URL, keyPrefix: freshPrefix() }));

afterAll(() => deleteRunKeys(prefix));

const session = (clientId: string, expiresAt: number | undefined): StoredSession => ({
  clientId,
  expiryIntervalSeconds: 30,
  expiresAt,
  subscriptions: [],
  flights: [],
  incomingQos2: [],
});

const delivery: Delivery = {
  message: { topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, properties: undefined, expiresAt: undefined, publisher: undefined },
  qos: 1,
  retain: false,
  subscriptionIds: undefined,
};

describe('Redis persistence, beyond the common contract', () => {
  const admin = adminRedis();
  afterAll(() => admin.quit());

  it('keeps everything under its key prefix, in the documented layout', async () => {
    const keyPrefix = freshPrefix();
    const persistence = await connectRedisPersistence({ connection: REDIS_URL, keyPrefix });
    await persistence.sessions.put(session('c', 1));
    await persistence.queues.push('c', delivery, 10);
    await persistence.retained.put({ ...delivery.message, retain: true }, 10);
    expect((await admin.keys(`${keyPrefix}*`)).sort()).toEqual([`${keyPrefix}queue:c`, `${keyPrefix}retained`, `${keyPrefix}retained-topics`, `${keyPrefix}session:c`]);
    expect(await admin.type(`${keyPrefix}queue:c`)).toBe('list');
    expect(await admin.type(`${keyPrefix}retained`)).toBe('hash');
    expect(await admin.type(`${keyPrefix}retained-topics`)).toBe('zset');
    await persistence.close();
  });

  it('MQTT-4.1.0-2: an offline session and its queue expire in Redis after the expiry interval; a connected one does not', async () => {
    const keyPrefix = freshPrefix();
    const persistence = await connectRedisPersistence({ connection: REDIS_URL, keyPrefix });
    await persistence.sessions.put(session('away', Date.now() + 30_000));
    await persistence.queues.push('away', delivery, 10);
    for (const key of ['session:away', 'queue:away']) {
      const ttl = await admin.pttl(`${keyPrefix}${key}`);
      expect(ttl).toBeGreaterThan(29_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
    }
    await persistence.sessions.put(session('away', undefined));
    expect(await admin.pttl(`${keyPrefix}session:away`)).toBe(-1);
    expect(await admin.pttl(`${keyPrefix}queue:away`)).toBe(-1);
    await persistence.close();
  });
});

describe('one broker on Redis persistence', () => {
  const started: TestBroker[] = [];
  const stores: Persistence[] = [];
  const v5 = { protocolVersion: 5 as const };
  const persistent = { ...v5, clean: false, properties: { sessionExpiryInterval: 60 } };

  const persistence = async (keyPrefix: string): Promise<Persistence> => {
    const opened = await connectRedisPersistence({ connection: REDIS_URL, keyPrefix });
    stores.push(opened);
    return opened;
  };

  afterEach(async () => {
    await closeClients();
    await Promise.all(started.splice(0).map((broker) => broker.close()));
    await Promise.all(stores.splice(0).map((opened) => opened.close()));
  });

  it('keeps sessions, queued messages and retained messages across a restart', async () => {
    const keyPrefix = freshPrefix();
    const topic = unique('restart');
    const clientId = unique('survivor');
    const first = await startBroker({ persistence: await persistence(keyPrefix) });
    const client = await connectClient(first.url, { ...persistent, clientId });
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(`${topic}/retained`, Buffer.from([0, 255]), { qos: 1, retain: true });
    await first.close();

    const second = await startBroker({ persistence: await persistence(keyPrefix) });
    started.push(second);
    await waitFor(() => second.broker.stats().offlineSessions === 1, 3000, 'the session restored');
    const publisher = await connectClient(second.url, v5);
    await publisher.publishAsync(topic, 'while the broker restarted', { qos: 1 });
    const back = await connectCollecting(second.url, { ...persistent, clientId });
    expect(back.connack.sessionPresent).toBe(true);
    await back.client.subscribeAsync(`${topic}/retained`, { qos: 1 });
    await waitFor(() => back.received.length === 2, 3000, 'the queued and the retained message');
    expect(back.received.map((message) => message.payload)).toEqual(['while the broker restarted', '\u0000\ufffd']);
  });

  it('MQTT 4.1: a message routed to a session while it is being resumed is delivered after its queue, not left in it', async () => {
    const keyPrefix = freshPrefix();
    const redis = await persistence(keyPrefix);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let gated = false;
    // The session is read slowly, as from a distant Redis: messages arrive in between.
    const slow: Persistence = { ...redis, sessions: { ...redis.sessions, get: async (id) => ((gated = true), await gate, redis.sessions.get(id)), put: (s) => redis.sessions.put(s), delete: (id) => redis.sessions.delete(id), list: () => redis.sessions.list() } };
    const broker = await startBroker({ persistence: slow });
    started.push(broker);
    const topic = unique('resuming');
    const clientId = unique('resumed');
    const first = await connectClient(broker.url, { ...persistent, clientId });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    const publisher = await connectClient(broker.url, v5);
    await publisher.publishAsync(topic, 'queued', { qos: 1 });
    const back = connectCollecting(broker.url, { ...persistent, clientId });
    await waitFor(() => gated, 3000, 'the session being read');
    await publisher.publishAsync(topic, 'during', { qos: 1 });
    release();
    const { received } = await back;
    await waitFor(() => received.length === 2, 3000, 'both messages');
    expect(received.map((message) => message.payload)).toEqual(['queued', 'during']);
    const admin = adminRedis();
    expect(await admin.exists(`${keyPrefix}queue:${clientId}`)).toBe(0);
    await admin.quit();
  });
});
