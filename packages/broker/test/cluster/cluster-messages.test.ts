import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerHooks } from '@fleetward/broker';
import { startNode, type TestNode } from '../helpers/cluster-nodes.js';
import { deleteRunKeys, runPrefix } from '../helpers/redis.js';
import { allowAll, closeClients, connectClient, connectCollecting, sleep, unique, waitFor } from '../helpers/test-broker.js';

/** Two nodes on one machine sharing the local Redis: messages published on one reach subscribers on the other. */
describe('a cluster of two nodes: messages', () => {
  const prefix = runPrefix('messages');
  const v5 = { protocolVersion: 5 as const };
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

  it('MQTT-4.5.0-1: a message published on A reaches a subscriber on B at QoS 0, 1 and 2, at the QoS granted (MQTT-3.8.4-8)', async () => {
    const topic = unique('fanout');
    const { client: subscriber, received } = await connectCollecting(b.url, v5);
    await subscriber.subscribeAsync(`${topic}/2`, { qos: 2 });
    await subscriber.subscribeAsync(`${topic}/1`, { qos: 1 });
    const publisher = await connectClient(a.url, v5);
    for (const qos of [0, 1, 2] as const) await publisher.publishAsync(`${topic}/2`, `at ${qos}`, { qos });
    await publisher.publishAsync(`${topic}/1`, 'downgraded', { qos: 2 });
    await waitFor(() => received.length === 4, 3000, 'four messages');
    // MQTT.js emits a QoS 2 message only on PUBREL, a round trip later than a QoS 1 one: order is
    // kept per topic and QoS (MQTT-4.6.0-5), not across them, so the copies are compared sorted.
    const copies = received.map(({ topic: name, payload, qos }) => ({ name, payload, qos }));
    expect(copies.sort((x, y) => x.payload.localeCompare(y.payload))).toEqual([
      { name: `${topic}/2`, payload: 'at 0', qos: 0 },
      { name: `${topic}/2`, payload: 'at 1', qos: 1 },
      { name: `${topic}/2`, payload: 'at 2', qos: 2 },
      { name: `${topic}/1`, payload: 'downgraded', qos: 1 },
    ]);
    expect(a.broker.stats().clusterErrors + b.broker.stats().clusterErrors).toBe(0);
  });

  it('MQTT-4.6.0-5: keeps each publisher\'s order across nodes, and delivers each message once', async () => {
    const topic = unique('order');
    const { client: subscriber, received } = await connectCollecting(b.url, v5);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const onA = await connectClient(a.url, v5);
    const onB = await connectClient(b.url, v5);
    const count = 150;
    const sent: Promise<unknown>[] = [];
    for (let index = 0; index < count; index++) {
      sent.push(onA.publishAsync(topic, `a-${index}`, { qos: 1 }), onB.publishAsync(topic, `b-${index}`, { qos: 1 }));
    }
    await Promise.all(sent);
    await waitFor(() => received.length >= count * 2, 5000, 'every message');
    await sleep(50);
    const payloads = received.map((message) => message.payload);
    expect(payloads).toHaveLength(count * 2);
    for (const publisher of ['a', 'b']) {
      expect(payloads.filter((payload) => payload.startsWith(`${publisher}-`))).toEqual([...Array(count).keys()].map((index) => `${publisher}-${index}`));
    }
  });

  it('MQTT-3.3.4-2: a subscriber on each node gets one copy, and overlapping subscriptions still one', async () => {
    const topic = unique('copies');
    const onA = await connectCollecting(a.url, v5);
    const onB = await connectCollecting(b.url, v5);
    await onA.client.subscribeAsync(`${topic}/+`, { qos: 1 });
    await onB.client.subscribeAsync(`${topic}/+`, { qos: 1 });
    await onB.client.subscribeAsync(`${topic}/#`, { qos: 2 });
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(`${topic}/x`, 'once', { qos: 2 });
    await waitFor(() => onA.received.length === 1 && onB.received.length === 1, 3000, 'one copy each');
    await sleep(100);
    expect(onA.received).toHaveLength(1);
    expect(onB.received.map(({ payload, qos }) => ({ payload, qos }))).toEqual([{ payload: 'once', qos: 2 }]);
  });

  it('MQTT-3.3.1-12, MQTT-3.3.1-13: Retain As Published is honoured on the delivering node', async () => {
    const topic = unique('rap');
    const { client: subscriber, received } = await connectCollecting(b.url, v5);
    await subscriber.subscribeAsync(`${topic}/kept`, { qos: 1, rap: true });
    await subscriber.subscribeAsync(`${topic}/cleared`, { qos: 1, rap: false });
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(`${topic}/kept`, 'r', { qos: 1, retain: true });
    await publisher.publishAsync(`${topic}/cleared`, 'r', { qos: 1, retain: true });
    await waitFor(() => received.length === 2, 3000, 'two messages');
    expect(received.map(({ topic: name, retain }) => ({ name, retain }))).toEqual([
      { name: `${topic}/kept`, retain: true },
      { name: `${topic}/cleared`, retain: false },
    ]);
    for (const name of ['kept', 'cleared']) await publisher.publishAsync(`${topic}/${name}`, '', { qos: 1, retain: true });
  });

  it('MQTT-3.3.1-5, MQTT-3.3.1-9: a retained message set on A is sent to a new subscriber on B, and MQTT-3.3.1-6 one deleted on B is gone for A', async () => {
    const topic = unique('retained');
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(topic, Buffer.from([0, 1, 254, 255]), { qos: 1, retain: true });
    const onB = await connectClient(b.url, v5);
    const seen = new Promise<{ payload: Buffer; retain: boolean }>((resolve) => onB.once('message', (_topic, payload, packet) => resolve({ payload, retain: packet.retain })));
    await onB.subscribeAsync(topic, { qos: 1 });
    expect(await seen).toEqual({ payload: Buffer.from([0, 1, 254, 255]), retain: true });
    await onB.publishAsync(topic, '', { qos: 1, retain: true });
    const late = await connectCollecting(a.url, v5);
    await late.client.subscribeAsync(topic, { qos: 1 });
    await sleep(100);
    expect(late.received).toEqual([]);
  });

  it('MQTT-3.3.2-5, MQTT-3.3.2-6: a message expires across nodes, and is forwarded with the time it has left', async () => {
    const topic = unique('expiry');
    const clientId = unique('expiry-client');
    const away = await connectClient(b.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await away.subscribeAsync(topic, { qos: 1 });
    await away.endAsync();
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(topic, 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await publisher.publishAsync(topic, 'long', { qos: 1, properties: { messageExpiryInterval: 60 } });
    await sleep(1100);
    const back = await connectCollecting(b.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await waitFor(() => back.received.length === 1, 3000, 'the long-lived message');
    await sleep(100);
    expect(back.received.map((message) => message.payload)).toEqual(['long']);
    const left = back.received[0]?.properties?.messageExpiryInterval as number;
    expect(left).toBeGreaterThan(55);
    expect(left).toBeLessThan(60);
  });

  it('MQTT 4.8.2: a shared subscription with members on both nodes gives each message to exactly one member', async () => {
    const topic = unique('shared');
    const members = await Promise.all([a, a, b, b].map((node) => connectCollecting(node.url, v5)));
    for (const member of members) await member.client.subscribeAsync(`$share/workers/${topic}/#`, { qos: 1 });
    // Each node learns of the other's members over the bus.
    await sleep(200);
    const onA = await connectClient(a.url, v5);
    const onB = await connectClient(b.url, v5);
    const sent: Promise<unknown>[] = [];
    for (let index = 0; index < 40; index++) sent.push(onA.publishAsync(`${topic}/a`, `a-${index}`, { qos: 1 }), onB.publishAsync(`${topic}/b`, `b-${index}`, { qos: 1 }));
    await Promise.all(sent);
    await waitFor(() => members.reduce((sum, member) => sum + member.received.length, 0) >= 80, 5000, 'every message');
    await sleep(100);
    const payloads = members.flatMap((member) => member.received.map((message) => message.payload));
    expect(payloads).toHaveLength(80);
    expect(new Set(payloads).size).toBe(80);
    // Both nodes' members had a share of both nodes' messages.
    for (const member of members) expect(member.received.length).toBeGreaterThan(0);
  });

  it('MQTT 4.8.2: a shared message goes to a node with a connected member rather than to one whose members are away', async () => {
    const topic = unique('shared-away');
    const filter = `$share/g/${topic}`;
    const clientId = unique('away-member');
    const away = await connectClient(a.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await away.subscribeAsync(filter, { qos: 1 });
    await away.endAsync();
    const present = await connectCollecting(b.url, v5);
    await present.client.subscribeAsync(filter, { qos: 1 });
    await sleep(200);
    const publisher = await connectClient(a.url, v5);
    for (let index = 0; index < 10; index++) await publisher.publishAsync(topic, `m-${index}`, { qos: 1 });
    await waitFor(() => present.received.length === 10, 3000, 'ten messages');
    const back = await connectCollecting(a.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(back.connack.sessionPresent).toBe(true);
    await sleep(200);
    expect(back.received).toEqual([]);
  });
});

describe('a cluster of two nodes: delivery decisions', () => {
  const prefix = runPrefix('delivery');
  afterAll(() => deleteRunKeys(prefix));

  it('asks authorizeDelivery on the node that delivers, for each delivery', async () => {
    const asked: Record<'a' | 'b', string[]> = { a: [], b: [] };
    const hooks = (name: 'a' | 'b'): BrokerHooks<undefined> => ({
      ...allowAll(),
      authorizeDelivery: (client, message) => {
        asked[name].push(`${client.clientId} ${message.topic}`);
        return !message.topic.endsWith('/secret');
      },
    });
    const a = await startNode(prefix, { hooks: hooks('a') });
    const b = await startNode(prefix, { hooks: hooks('b') });
    try {
      const topic = unique('decided');
      const subscriberId = unique('reader');
      const { client: subscriber, received } = await connectCollecting(b.url, { protocolVersion: 5, clientId: subscriberId });
      await subscriber.subscribeAsync(`${topic}/#`, { qos: 1 });
      const publisher = await connectClient(a.url, { protocolVersion: 5 });
      await publisher.publishAsync(`${topic}/secret`, 'no', { qos: 1 });
      await publisher.publishAsync(`${topic}/open`, 'yes', { qos: 1 });
      await waitFor(() => received.length === 1, 3000, 'the open message');
      await sleep(50);
      expect(received.map((message) => message.payload)).toEqual(['yes']);
      expect(asked.b).toEqual([`${subscriberId} ${topic}/secret`, `${subscriberId} ${topic}/open`]);
      expect(asked.a).toEqual([]);
      expect(b.broker.stats().denied.delivery).toBe(1);
    } finally {
      await closeClients();
      await Promise.all([a.close(), b.close()]);
    }
  });
});
