import { Store } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type TestNode } from '../helpers/cluster-nodes.js';
import { RawClient } from '../helpers/raw-client.js';
import { adminRedis, deleteRunKeys, runPrefix } from '../helpers/redis.js';
import { closeClients, connectClient, connectCollecting, disconnectOf, sleep, unique, waitFor, type Received } from '../helpers/test-broker.js';

/** Two nodes on one machine sharing the local Redis: sessions move between them. */
describe('a cluster of two nodes: sessions', () => {
  const prefix = runPrefix('sessions');
  const v5 = { protocolVersion: 5 as const };
  const persistent = { ...v5, clean: false, properties: { sessionExpiryInterval: 60 } };
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    a = await startNode(prefix);
    b = await startNode(prefix);
  });
  afterEach(closeClients);
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await deleteRunKeys(prefix);
  });

  it('MQTT-3.1.2-5, MQTT-3.2.2-3: a persistent session made on A resumes on B with the QoS 1 messages queued meanwhile, once, in each publisher\'s order', async () => {
    const topic = unique('queued');
    const clientId = unique('traveller');
    const first = await connectClient(a.url, { ...persistent, clientId });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    const onA = await connectClient(a.url, v5);
    const onB = await connectClient(b.url, v5);
    for (const payload of ['a1', 'a2', 'a3']) await onA.publishAsync(topic, payload, { qos: 1 });
    for (const payload of ['b1', 'b2']) await onB.publishAsync(topic, payload, { qos: 1 });
    await onB.publishAsync(topic, 'not queued', { qos: 0 });
    // No wait: B's claim follows B's messages on the bus, so A queues them before it hands the session over.
    const resumed = await connectCollecting(b.url, { ...persistent, clientId });
    expect(resumed.connack.sessionPresent).toBe(true);
    await waitFor(() => resumed.received.length === 5, 3000, 'the queued messages');
    await sleep(100);
    // MQTT-4.6.0-5 orders each publisher's messages; two publishers on two nodes may interleave.
    const payloads = resumed.received.map((message) => message.payload);
    expect(payloads.filter((payload) => payload.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(payloads.filter((payload) => payload.startsWith('b'))).toEqual(['b1', 'b2']);
    // Queued once, in the one queue the session has, and handed over whole.
    const admin = adminRedis();
    expect(await admin.llen(`${prefix}queue:${clientId}`)).toBe(0);
    await admin.quit();
    await onA.publishAsync(topic, 'live', { qos: 1 });
    await waitFor(() => resumed.received.length === 6, 3000, 'a live message');
  });

  it('MQTT-3.1.4-3: a client id connecting on B takes over its connection on A (DISCONNECT 0x8E), with the session and its messages in flight (MQTT-4.4.0-1)', async () => {
    const topic = unique('takeover');
    const clientId = unique('taken');
    const old = await RawClient.open(a.port, 5);
    await old.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    old.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1, nl: false, rap: false, rh: 0 }] });
    await old.next('suback');
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(topic, 'in flight', { qos: 1 });
    // Received, never acknowledged.
    expect(await old.next('publish')).toMatchObject({ payload: Buffer.from('in flight'), dup: false });
    const newer = await connectCollecting(b.url, { ...persistent, clientId });
    expect(newer.connack.sessionPresent).toBe(true);
    expect(await old.next('disconnect')).toMatchObject({ reasonCode: 0x8e });
    expect(await old.closesWithin()).toBe(true);
    await waitFor(() => newer.received.length === 1, 3000, 'the resent message');
    expect(newer.received[0]).toMatchObject({ payload: 'in flight', dup: true, qos: 1 });
    await publisher.publishAsync(topic, 'after', { qos: 1 });
    await waitFor(() => newer.received.length === 2, 3000, 'a message after the takeover');
  });

  it('MQTT-3.1.4-3 (3.1.1): a takeover across nodes closes the older 3.1.1 connection', async () => {
    const clientId = unique('taken-311');
    const old = await connectClient(a.url, { protocolVersion: 4, clientId });
    const closed = new Promise<void>((resolve) => old.once('close', () => resolve()));
    const newer = await connectCollecting(b.url, { protocolVersion: 4, clientId });
    expect(newer.connack.sessionPresent).toBe(false);
    await closed;
  });

  it('MQTT-3.1.2-4: Clean Start on B discards the session held on A, with its queue', async () => {
    const topic = unique('discarded');
    const clientId = unique('cleaned');
    const first = await connectClient(a.url, { ...persistent, clientId });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(topic, 'dropped with the session', { qos: 1 });
    const fresh = await connectCollecting(b.url, { ...persistent, clientId, clean: true });
    expect(fresh.connack.sessionPresent).toBe(false);
    await publisher.publishAsync(topic, 'no subscription any more', { qos: 1 });
    await sleep(150);
    expect(fresh.received).toEqual([]);
    const admin = adminRedis();
    expect(await admin.exists(`${prefix}queue:${clientId}`)).toBe(0);
    await admin.quit();
  });

  it('MQTT-3.1.3-9: a session resumed on another node cancels its delayed Will Message; a Clean Start there sends it', async () => {
    const topic = unique('will');
    const watcher = await connectCollecting(b.url, v5);
    await watcher.client.subscribeAsync(`${topic}/+`, { qos: 1 });
    for (const [name, clean] of [['resumed', false], ['ended', true]] as const) {
      const clientId = unique(`will-${name}`);
      const will = { topic: `${topic}/${name}`, payload: Buffer.from(name), qos: 1 as const, retain: false, properties: { willDelayInterval: 1 } };
      const old = await connectClient(a.url, { ...persistent, clientId, will });
      const gone = disconnectOf(old);
      await connectClient(b.url, { ...persistent, clientId, clean });
      expect((await gone).reasonCode).toBe(0x8e);
    }
    await sleep(1300);
    expect(watcher.received.map((message) => message.payload)).toEqual(['ended']);
  });

  it('MQTT-4.3.3: delivers QoS 2 messages exactly once while the session moves between nodes under load', async () => {
    const topic = unique('exactly-once');
    const clientId = unique('moving');
    // The client keeps its QoS 2 state (messages received, awaiting PUBREL) across its connections, as a device would.
    const incomingStore = new Store();
    const options = { ...persistent, clientId, incomingStore };
    const received: Received[][] = [];
    const first = await connectCollecting(a.url, options);
    received.push(first.received);
    await first.client.subscribeAsync(topic, { qos: 2 });
    const publishers = [await connectClient(a.url, v5), await connectClient(b.url, v5)];
    const total = 300;
    const moves: Record<number, TestNode> = { 100: b, 200: a };
    for (let index = 0; index < total; index++) {
      const move = moves[index];
      if (move !== undefined) received.push((await connectCollecting(move.url, options)).received);
      void publishers[index % 2]?.publishAsync(topic, String(index), { qos: 2 });
      if (index % 10 === 9) await sleep(5);
    }
    const payloads = (): string[] => received.flatMap((messages) => messages.map((message) => message.payload));
    await waitFor(() => new Set(payloads()).size === total, 10_000, 'every message');
    await sleep(200);
    expect(payloads().sort()).toEqual([...Array(total).keys()].map(String).sort());
    // Each connection had its part: the session did move while messages flowed.
    for (const part of received) expect(part.length).toBeGreaterThan(0);
    expect(a.broker.stats().clusterErrors + b.broker.stats().clusterErrors).toBe(0);
  });

  it('disconnect(predicate, reasonCode) closes the matching connections of its own node only: the server calls it on every node', async () => {
    const onA = await connectClient(a.url, { ...v5, clientId: unique('revoked-a') });
    const onB = await connectClient(b.url, { ...v5, clientId: unique('revoked-b') });
    const bystander = await connectClient(b.url, { ...v5, clientId: unique('healthy') });
    const revoked = (client: { clientId: string }): boolean => client.clientId.startsWith('revoked-');
    const goneA = disconnectOf(onA);
    expect(a.broker.disconnect(revoked, 0x98)).toBe(1);
    expect((await goneA).reasonCode).toBe(0x98);
    // The predicate cannot travel (it closes over this node's connection contexts): B's are untouched until B is asked.
    await sleep(100);
    expect(onB.connected).toBe(true);
    const goneB = disconnectOf(onB);
    expect(b.broker.disconnect(revoked, 0x98)).toBe(1);
    expect((await goneB).reasonCode).toBe(0x98);
    expect(bystander.connected).toBe(true);
  });

  it('a node that leaves hands its offline sessions to the others: messages published afterwards are queued for them', async () => {
    const topic = unique('adopted');
    const clientId = unique('orphan');
    const leaving = await startNode(prefix);
    const first = await connectClient(leaving.url, { ...persistent, clientId });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    await waitFor(() => leaving.broker.stats().offlineSessions === 1, 3000, 'the offline session');
    const offline = (): number => a.broker.stats().offlineSessions + b.broker.stats().offlineSessions;
    const before = offline();
    await leaving.close();
    await waitFor(() => offline() === before + 1, 3000, 'the session adopted');
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(topic, 'kept for you', { qos: 1 });
    const back = await connectCollecting(b.url, { ...persistent, clientId });
    expect(back.connack.sessionPresent).toBe(true);
    await waitFor(() => back.received.length === 1, 3000, 'the message queued after the node left');
  });
});
