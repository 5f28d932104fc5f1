import { afterEach, describe, expect, it } from 'vitest';
import { defaultLimits, limitNames, type BrokerLimits } from '@fleetward/broker';
import { resolveLimits } from '../../src/broker-options.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeClients, connectClient, connectCollecting, sleep, startBroker, unique, waitFor, type TestBroker } from '../helpers/test-broker.js';

const started: TestBroker[] = [];
async function brokerWith(limits: Partial<BrokerLimits>): Promise<TestBroker> {
  const broker = await startBroker({ limits });
  started.push(broker);
  return broker;
}

afterEach(async () => {
  await closeClients();
  await Promise.all(started.splice(0).map((broker) => broker.close()));
});

describe('limits: named options with units and safe defaults', () => {
  it('has a default for every limit, and refuses unknown or out-of-range values', () => {
    expect(resolveLimits()).toEqual(defaultLimits);
    expect(resolveLimits({ maxTopicLevels: 8 }).maxTopicLevels).toBe(8);
    expect(() => resolveLimits({ maxTopicDepth: 3 } as unknown as Partial<BrokerLimits>)).toThrow(/unknown broker limit/);
    expect(() => resolveLimits({ receiveMaximum: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ maxPacketSizeBytes: 1.5 })).toThrow(RangeError);
    expect(() => resolveLimits({ minKeepAliveSeconds: 100, maxKeepAliveSeconds: 50 })).toThrow(RangeError);
  });

  it('maxConnections: closes connections beyond the cap at once', async () => {
    const broker = await brokerWith({ maxConnections: 2 });
    const kept = [await RawClient.open(broker.port), await RawClient.open(broker.port)];
    const refused = await RawClient.open(broker.port);
    expect(await refused.closesWithin()).toBe(true);
    expect(broker.broker.stats().limits.maxConnections).toBe(1);
    await kept[0]?.connect();
    for (const client of kept) client.end();
  });

  it('connectTimeoutMs: closes a connection that sends no CONNECT in time', async () => {
    const broker = await brokerWith({ connectTimeoutMs: 200 });
    const silent = await RawClient.open(broker.port);
    expect(await silent.closesWithin(1000)).toBe(true);
    expect(broker.broker.stats().limits.connectTimeoutMs).toBe(1);
  });

  it('maxPacketSizeBytes: a 3.1.1 client sending more is closed', async () => {
    const broker = await brokerWith({ maxPacketSizeBytes: 1024 });
    const raw = await RawClient.open(broker.port, 4);
    await raw.connect();
    raw.send({ cmd: 'publish', topic: 't', payload: Buffer.alloc(2000), qos: 0, retain: false, dup: false });
    expect(await raw.closesWithin()).toBe(true);
    expect(broker.broker.stats().limits.maxPacketSizeBytes).toBe(1);
  });

  it('maxPacketSizeBytes: an MQTT 5 CONNECT too large is refused with CONNACK 0x95', async () => {
    const broker = await brokerWith({ maxPacketSizeBytes: 256 });
    const raw = await RawClient.open(broker.port, 5);
    const connack = await raw.connect({ will: { topic: 'w', payload: Buffer.alloc(1000), qos: 0, retain: false } });
    expect(connack.reasonCode).toBe(0x95);
  });

  it('maxClientIdLengthBytes: a 3.1.1 client gets CONNACK 0x02', async () => {
    const broker = await brokerWith({ maxClientIdLengthBytes: 23 });
    const raw = await RawClient.open(broker.port, 4);
    expect((await raw.connect({ clientId: 'x'.repeat(24) })).returnCode).toBe(2);
  });

  it('maxTopicLengthBytes and maxTopicLevels: refuse long or deep topics and filters', async () => {
    const broker = await brokerWith({ maxTopicLengthBytes: 16, maxTopicLevels: 3 });
    const v5 = await RawClient.open(broker.port, 5);
    await v5.connect();
    v5.send({ cmd: 'publish', topic: 'x'.repeat(17), payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false });
    expect(await v5.next('puback')).toMatchObject({ reasonCode: 0x90 });
    v5.send({ cmd: 'subscribe', messageId: 2, subscriptions: ['a/b/c/d', 'a/b/c', 'y'.repeat(17)].map((topic) => ({ topic, qos: 0 as const, nl: false, rap: false, rh: 0 })) });
    expect(await v5.next('suback')).toMatchObject({ granted: [0x8f, 0, 0x8f] });
    const v4 = await RawClient.open(broker.port, 4);
    await v4.connect();
    v4.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'a/b/c/d', qos: 0 }] });
    expect(await v4.next('suback')).toMatchObject({ granted: [0x80] });
    v4.send({ cmd: 'publish', topic: 'a/b/c/d', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
    expect(await v4.closesWithin()).toBe(true);
    expect(broker.broker.stats().limits).toMatchObject({ maxTopicLengthBytes: 2, maxTopicLevels: 3 });
    v5.end();
  });

  it('maxSubscriptionsPerClient: refuses subscriptions beyond it (0x97, 3.1.1: 0x80), while replacing one is fine', async () => {
    const broker = await brokerWith({ maxSubscriptionsPerClient: 2 });
    const raw = await RawClient.open(broker.port, 5);
    await raw.connect();
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: ['a', 'b', 'c', 'a'].map((topic) => ({ topic, qos: 1 as const, nl: false, rap: false, rh: 0 })) });
    expect(await raw.next('suback')).toMatchObject({ granted: [1, 1, 0x97, 1] });
    raw.end();
  });

  it('maxQueuedMessages: an offline session keeps the newest messages, dropping the oldest, counted', async () => {
    const broker = await brokerWith({ maxQueuedMessages: 3 });
    const clientId = unique('queue');
    const subscriber = await connectClient(broker.url, { protocolVersion: 5, clientId, properties: { sessionExpiryInterval: 60 } });
    await subscriber.subscribeAsync('queued', { qos: 1 });
    await subscriber.endAsync();
    const publisher = await connectClient(broker.url, { protocolVersion: 5 });
    for (let index = 0; index < 5; index++) await publisher.publishAsync('queued', String(index), { qos: 1 });
    const { received } = await connectCollecting(broker.url, { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await waitFor(() => received.length === 3);
    expect(received.map((message) => message.payload)).toEqual(['2', '3', '4']);
    expect(broker.broker.stats().limits.maxQueuedMessages).toBe(2);
  });

  it('maxPendingWriteBytes and drainTimeoutMs: a client that stops reading loses QoS 0 messages, then its connection', async () => {
    const broker = await brokerWith({ maxPendingWriteBytes: 64 * 1024, drainTimeoutMs: 300, maxPacketSizeBytes: 1024 * 1024 });
    const topic = unique('slow');
    const slow = await RawClient.open(broker.port, 4);
    await slow.connect();
    slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    await slow.next('suback');
    // The client stops reading: the kernel buffers fill, then the broker's socket stops draining.
    slow.socket.pause();
    const publisher = await connectClient(broker.url, { protocolVersion: 4 });
    const payload = Buffer.alloc(256 * 1024);
    for (let index = 0; index < 200 && broker.broker.stats().limits.drainTimeoutMs === 0; index++) {
      await publisher.publishAsync(topic, payload, { qos: 0 });
      await sleep(10);
    }
    await waitFor(() => broker.broker.stats().limits.drainTimeoutMs === 1);
    expect(broker.broker.stats().limits.maxPendingWriteBytes).toBeGreaterThan(0);
    slow.socket.resume();
    expect(await slow.closesWithin(3000)).toBe(true);
  });

  it('maxRetainedMessages: a new retained topic beyond the limit is refused (0x97)', async () => {
    const broker = await brokerWith({ maxRetainedMessages: 1 });
    const raw = await RawClient.open(broker.port, 5);
    await raw.connect();
    raw.send({ cmd: 'publish', topic: 'r/1', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: true, dup: false });
    expect(await raw.next('puback')).toMatchObject({ reasonCode: 0 });
    raw.send({ cmd: 'publish', topic: 'r/2', payload: Buffer.from('x'), qos: 1, messageId: 2, retain: true, dup: false });
    expect(await raw.next('puback')).toMatchObject({ reasonCode: 0x97 });
    raw.send({ cmd: 'publish', topic: 'r/1', payload: Buffer.from('y'), qos: 1, messageId: 3, retain: true, dup: false });
    expect(await raw.next('puback')).toMatchObject({ reasonCode: 0 });
    raw.end();
  });

  it('minKeepAliveSeconds and maxKeepAliveSeconds: a 3.1.1 client asking for none is still held to the maximum', async () => {
    const broker = await brokerWith({ minKeepAliveSeconds: 1, maxKeepAliveSeconds: 1 });
    const raw = await RawClient.open(broker.port, 4);
    await raw.connect({ keepalive: 0 });
    expect(await raw.closesWithin(3000)).toBe(true);
    expect(broker.broker.stats().keepAliveTimeouts).toBe(1);
  });

  it('maxSessionExpirySeconds: a 3.1.1 persistent session lasts that long', async () => {
    const broker = await brokerWith({ maxSessionExpirySeconds: 1 });
    const clientId = unique('short-lived');
    const first = await RawClient.open(broker.port, 4);
    await first.connect({ clientId, clean: false });
    first.send({ cmd: 'disconnect' });
    await first.closed;
    await sleep(1300);
    const again = await RawClient.open(broker.port, 4);
    expect((await again.connect({ clientId, clean: false })).sessionPresent).toBe(false);
    again.end();
  });

  it('reports refusals under every limit that can refuse, starting from 0', async () => {
    const broker = await brokerWith({});
    expect(broker.broker.stats().limits).toEqual(Object.fromEntries(limitNames.map((name) => [name, 0])));
  });
});
