import type { IPublishPacket } from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';
import { allowAll, closeClients, collect, connectClient, connectCollecting, disconnectOf, sleep, startBroker, unique, waitFor, type TestBroker } from '../helpers/test-broker.js';

/** MQTT 5.0 (OASIS, 7 March 2019): publishing, subscribing, flow control, topic aliases, errors. */
describe('MQTT 5.0 messages', () => {
  let broker: TestBroker;
  const v5 = { protocolVersion: 5 as const };

  beforeAll(async () => {
    broker = await startBroker({ limits: { topicAliasMaximum: 4, receiveMaximum: 5, maxPacketSizeBytes: 2048 } });
  });
  afterEach(closeClients);
  afterAll(() => broker.close());

  describe('retained messages and subscription options', () => {
    it('MQTT-3.3.1-9 sends retained messages on subscribe with Retain Handling 0, also for an existing subscription', async () => {
      const topic = unique('rh0');
      const client = await connectClient(broker.url, v5);
      const received = collect(client);
      await client.publishAsync(topic, 'state', { qos: 1, retain: true });
      await client.subscribeAsync(topic, { qos: 1, rh: 0 });
      await waitFor(() => received.length === 1);
      await client.subscribeAsync(topic, { qos: 1, rh: 0 });
      await waitFor(() => received.length === 2);
      expect(received.every((message) => message.retain)).toBe(true);
    });

    it('MQTT-3.3.1-10 sends retained messages with Retain Handling 1 only when the subscription is new', async () => {
      const topic = unique('rh1');
      const client = await connectClient(broker.url, v5);
      const received = collect(client);
      await client.publishAsync(topic, 'state', { qos: 1, retain: true });
      await client.subscribeAsync(topic, { qos: 1, rh: 1 });
      await waitFor(() => received.length === 1);
      await client.subscribeAsync(topic, { qos: 1, rh: 1 });
      await sleep(100);
      expect(received).toHaveLength(1);
    });

    it('MQTT-3.3.1-11 sends no retained messages with Retain Handling 2', async () => {
      const topic = unique('rh2');
      const client = await connectClient(broker.url, v5);
      const received = collect(client);
      await client.publishAsync(topic, 'state', { qos: 1, retain: true });
      await client.subscribeAsync(topic, { qos: 1, rh: 2 });
      await sleep(100);
      expect(received).toEqual([]);
    });

    it('MQTT-3.3.1-12 clears RETAIN on forwarded messages, MQTT-3.3.1-13 keeps it with Retain As Published', async () => {
      const topic = unique('rap');
      const plain = await connectClient(broker.url, v5);
      const plainReceived = collect(plain);
      await plain.subscribeAsync(topic, { qos: 1, rap: false });
      const asPublished = await connectClient(broker.url, v5);
      const asPublishedReceived = collect(asPublished);
      await asPublished.subscribeAsync(topic, { qos: 1, rap: true });
      await plain.publishAsync(topic, 'not retained', { qos: 1, retain: false });
      await plain.publishAsync(topic, 'retained', { qos: 1, retain: true });
      await waitFor(() => plainReceived.length === 2 && asPublishedReceived.length === 2);
      expect(plainReceived.map((message) => message.retain)).toEqual([false, false]);
      expect(asPublishedReceived.map((message) => message.retain)).toEqual([false, true]);
      await plain.publishAsync(topic, '', { qos: 1, retain: true });
    });

    it('MQTT-3.3.1-6 deletes the retained message on an empty retained publish, which MQTT-3.3.1-7 never stores', async () => {
      const topic = unique('retained-deleted');
      const client = await connectClient(broker.url, v5);
      await client.publishAsync(topic, 'soon gone', { qos: 1, retain: true });
      await client.publishAsync(topic, '', { qos: 1, retain: true });
      const late = await connectClient(broker.url, v5);
      const received = collect(late);
      await late.subscribeAsync(topic, { qos: 1 });
      await sleep(100);
      expect(received).toEqual([]);
    });

    it('MQTT-3.8.3-3 does not forward a client its own messages on a No Local subscription', async () => {
      const topic = unique('no-local');
      const a = await connectClient(broker.url, v5);
      const fromA = collect(a);
      const b = await connectClient(broker.url, v5);
      const fromB = collect(b);
      await a.subscribeAsync(topic, { qos: 1, nl: true });
      await b.subscribeAsync(topic, { qos: 1, nl: true });
      await a.publishAsync(topic, 'from a', { qos: 1 });
      await waitFor(() => fromB.length === 1);
      await sleep(100);
      expect(fromA).toEqual([]);
    });

    it('MQTT-3.8.3-4 closes the connection on No Local for a shared subscription (DISCONNECT 0x82)', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/x', qos: 0, nl: true, rap: false, rh: 0 }] });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.8.3-5 closes the connection on reserved bits in the subscription options', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.write([0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61, 0xc0]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.9.3-1 answers each filter in order, MQTT-3.9.3-2 with a Subscribe Reason Code: granted QoS, 0x87 refused, 0x8F invalid', async () => {
      const guarded = await startBroker({ limits: { maximumQoS: 1 } }, { ...allowAll(), authorizeSubscribe: (_client, subscription) => subscription.filter !== 'forbidden' });
      try {
        const raw = await RawClient.open(guarded.port, 5);
        await raw.connect();
        raw.send({
          cmd: 'subscribe',
          messageId: 9,
          subscriptions: [
            { topic: 'a', qos: 2, nl: false, rap: false, rh: 0 },
            { topic: 'forbidden', qos: 1, nl: false, rap: false, rh: 0 },
            { topic: 'b/#/c', qos: 0, nl: false, rap: false, rh: 0 },
            { topic: '$share/+bad/x', qos: 0, nl: false, rap: false, rh: 0 },
            { topic: 'c', qos: 0, nl: false, rap: false, rh: 0 },
          ],
        });
        // The QoS is granted up to the server's Maximum QoS (MQTT 3.2.2.3.4).
        expect(await raw.next('suback')).toMatchObject({ messageId: 9, granted: [1, 0x87, 0x8f, 0x8f, 0], properties: { reasonString: expect.any(String) } });
        raw.end();
      } finally {
        await guarded.close();
      }
    });

    it('MQTT-3.1.2-29 sends no Reason String on acknowledgements when Request Problem Information is 0', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ properties: { requestProblemInformation: false } });
      raw.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'a/#/b', qos: 0, nl: false, rap: false, rh: 0 }] });
      const suback = await raw.next('suback');
      expect(suback).toMatchObject({ granted: [0x8f] });
      expect((suback as { properties?: { reasonString?: string } }).properties?.reasonString).toBeUndefined();
      raw.end();
    });

    it('MQTT 3.8.2.1.2 closes the connection on a Subscription Identifier of 0 (DISCONNECT 0x82)', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'x', qos: 0, nl: false, rap: false, rh: 0 }], properties: { subscriptionIdentifier: 0 } });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
    });

    it('MQTT-3.11.3-1 answers each filter of an UNSUBSCRIBE in order, MQTT-3.11.3-2 with 0x00 or 0x11 No subscription existed', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'u/1', qos: 0, nl: false, rap: false, rh: 0 }] });
      await raw.next('suback');
      raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['u/2', 'u/1'] });
      expect(await raw.next('unsuback')).toMatchObject({ messageId: 2, granted: [0x11, 0x00] });
      raw.end();
    });
  });

  describe('subscription identifiers and overlapping subscriptions', () => {
    it('MQTT-3.3.4-2 delivers overlapping matches once at the highest QoS, MQTT-3.3.4-3 and MQTT-3.3.4-4 with every Subscription Identifier', async () => {
      const prefix = unique('subid');
      const client = await connectClient(broker.url, v5);
      const received = collect(client);
      await client.subscribeAsync(`${prefix}`, { qos: 1, properties: { subscriptionIdentifier: 2 } });
      await client.subscribeAsync(`${prefix}/#`, { qos: 2, properties: { subscriptionIdentifier: 3 } });
      await client.subscribeAsync(`${prefix}/+`, { qos: 0 });
      await client.publishAsync(prefix, 'parent level', { qos: 2 });
      await waitFor(() => received.length === 1);
      await sleep(100);
      expect(received).toHaveLength(1);
      expect(received[0]?.qos).toBe(2);
      expect(new Set(received[0]?.properties?.subscriptionIdentifier as number[])).toEqual(new Set([2, 3]));
    });

    it('MQTT-3.8.4-3 replaces a subscription, its Subscription Identifier included; MQTT-3.8.4-8 sends at the lower of the two QoS', async () => {
      const topic = unique('replace');
      const client = await connectClient(broker.url, v5);
      const received = collect(client);
      await client.subscribeAsync(topic, { qos: 2, properties: { subscriptionIdentifier: 7 } });
      await client.subscribeAsync(topic, { qos: 1, properties: { subscriptionIdentifier: 8 } });
      await client.publishAsync(topic, 'once', { qos: 2 });
      await waitFor(() => received.length === 1);
      await sleep(50);
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ qos: 1, properties: { subscriptionIdentifier: 8 } });
    });

    it('MQTT-3.3.4-6 closes the connection on a PUBLISH from a client carrying a Subscription Identifier', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.write([0x30, 0x06, 0x00, 0x01, 0x74, 0x02, 0x0b, 0x01]);
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
      expect(await raw.closesWithin()).toBe(true);
    });
  });

  describe('properties forwarded', () => {
    it('MQTT-3.3.2-4, -15, -16, -17, -18, -20: Payload Format Indicator, Response Topic, Correlation Data, User Properties (in order) and Content Type unaltered', async () => {
      const topic = unique('properties');
      const subscriber = await connectClient(broker.url, v5);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 1 });
      const v311 = await connectClient(broker.url, { protocolVersion: 4 });
      const fromV311 = collect(v311);
      await v311.subscribeAsync(topic, { qos: 1 });
      const publisher = await connectClient(broker.url, v5);
      const properties = {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        responseTopic: 'replies/here',
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: { c: '3', a: ['2', '1'] },
      };
      await publisher.publishAsync(topic, '{"ok":true}', { qos: 1, properties });
      await waitFor(() => received.length === 1 && fromV311.length === 1);
      expect(received[0]?.properties).toMatchObject(properties);
      expect(Object.keys(received[0]?.properties?.userProperties as object)).toEqual(['c', 'a']);
      // A 3.1.1 subscriber gets the message without them.
      expect(fromV311[0]?.payload).toBe('{"ok":true}');
    });

    it('MQTT-3.3.2-14 closes the connection on a Response Topic holding a wildcard (DISCONNECT 0x82)', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { responseTopic: 'r/#' } });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
    });

    it('MQTT 3.3.2.3.2 refuses a payload said to be UTF-8 that is not, with PUBACK 0x99', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({ cmd: 'publish', topic: 't', payload: Buffer.from([0xc3, 0x28]), qos: 1, messageId: 4, retain: false, dup: false, properties: { payloadFormatIndicator: true } });
      expect(await raw.next('puback')).toMatchObject({ messageId: 4, reasonCode: 0x99 });
      raw.end();
    });
  });

  describe('message expiry', () => {
    it('MQTT-3.3.2-5 drops a queued message whose Message Expiry Interval passed, MQTT-3.3.2-6 forwards the remaining interval', async () => {
      const clientId = unique('expiry-subscriber');
      const topic = unique('expiry');
      const subscriber = await connectClient(broker.url, { ...v5, clientId, properties: { sessionExpiryInterval: 60 } });
      await subscriber.subscribeAsync(topic, { qos: 1 });
      await subscriber.endAsync();
      const publisher = await connectClient(broker.url, v5);
      await publisher.publishAsync(topic, 'expires', { qos: 1, properties: { messageExpiryInterval: 1 } });
      await publisher.publishAsync(topic, 'lasts', { qos: 1, properties: { messageExpiryInterval: 10 } });
      await sleep(1200);
      const { received } = await connectCollecting(broker.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      await waitFor(() => received.length === 1);
      await sleep(100);
      expect(received).toHaveLength(1);
      expect(received[0]?.payload).toBe('lasts');
      expect(received[0]?.properties?.messageExpiryInterval).toBeLessThan(10);
      expect(broker.broker.stats().messagesExpired).toBeGreaterThan(0);
    });
  });

  describe('topic aliases', () => {
    it('MQTT-3.3.2-12 accepts Topic Aliases up to its maximum: a topic sets one, an empty topic uses it', async () => {
      const topic = unique('alias');
      const subscriber = await connectClient(broker.url, v5);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 0 });
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({ cmd: 'publish', topic, payload: Buffer.from('one'), qos: 0, retain: false, dup: false, properties: { topicAlias: 4 } });
      raw.send({ cmd: 'publish', topic: '', payload: Buffer.from('two'), qos: 0, retain: false, dup: false, properties: { topicAlias: 4 } });
      await waitFor(() => received.length === 2);
      expect(received.map((message) => [message.topic, message.payload])).toEqual([
        [topic, 'one'],
        [topic, 'two'],
      ]);
      raw.end();
    });

    it('MQTT-3.3.2-8 and MQTT 3.3.4: a Topic Alias of 0, or above the maximum, is answered with DISCONNECT 0x94', async () => {
      for (const topicAlias of [0, 5]) {
        const raw = await RawClient.open(broker.port, 5);
        await raw.connect();
        raw.send({ cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias } });
        expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x94 });
        expect(await raw.closesWithin()).toBe(true);
      }
    });

    it('MQTT-3.3.2-7 does not carry Topic Alias mappings to a new connection: an unknown alias is DISCONNECT 0x82', async () => {
      const clientId = unique('alias-reconnect');
      const first = await RawClient.open(broker.port, 5);
      await first.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      first.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
      first.send({ cmd: 'disconnect', reasonCode: 0 });
      await first.closed;
      const second = await RawClient.open(broker.port, 5);
      expect((await second.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } })).sessionPresent).toBe(true);
      second.send({ cmd: 'publish', topic: '', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
      expect(await second.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
    });

    it('MQTT-3.3.2-11 and MQTT-3.1.2-26 assign Topic Aliases up to the client maximum, MQTT-3.1.2-27 none when it gives none', async () => {
      const topics = [unique('alias-out'), unique('alias-out')];
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ properties: { topicAliasMaximum: 1 } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: topics.map((topic) => ({ topic, qos: 0 as const, nl: false, rap: false, rh: 0 })) });
      await raw.next('suback');
      const plain = await RawClient.open(broker.port, 5);
      await plain.connect();
      plain.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0] as string, qos: 0, nl: false, rap: false, rh: 0 }] });
      await plain.next('suback');
      const publisher = await connectClient(broker.url, v5);
      for (const topic of [topics[0], topics[0], topics[1], topics[0]] as string[]) await publisher.publishAsync(topic, 'x', { qos: 1 });
      const sent = [] as IPublishPacket[];
      for (let index = 0; index < 4; index++) sent.push((await raw.next('publish')) as IPublishPacket);
      expect(sent.map((packet) => [packet.topic, packet.properties?.topicAlias])).toEqual([
        [topics[0], 1],
        ['', 1],
        [topics[1], undefined],
        ['', 1],
      ]);
      for (let index = 0; index < 3; index++) expect(((await plain.next('publish')) as IPublishPacket).properties?.topicAlias).toBeUndefined();
      raw.end();
      plain.end();
    });
  });

  describe('flow control and limits', () => {
    it('MQTT-3.3.4-7 answers a client exceeding our Receive Maximum with DISCONNECT 0x93', async () => {
      const raw = await RawClient.open(broker.port, 5);
      expect((await raw.connect()).properties?.receiveMaximum).toBe(5);
      for (let messageId = 1; messageId <= 6; messageId++) raw.send({ cmd: 'publish', topic: 'flow', payload: Buffer.from('x'), qos: 2, messageId, retain: false, dup: false });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x93 });
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.3.4-9 never has more unacknowledged QoS 1 and 2 messages towards a client than its Receive Maximum (MQTT-4.9.0-2)', async () => {
      const topic = unique('receive-maximum');
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ properties: { receiveMaximum: 2 } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1, nl: false, rap: false, rh: 0 }] });
      await raw.next('suback');
      const publisher = await connectClient(broker.url, v5);
      for (let index = 0; index < 3; index++) await publisher.publishAsync(topic, String(index), { qos: 1 });
      const first = (await raw.next('publish')) as IPublishPacket;
      await raw.next('publish');
      await expect(raw.next('publish', 300)).rejects.toThrow();
      raw.send({ cmd: 'puback', messageId: first.messageId as number, reasonCode: 0 });
      expect(((await raw.next('publish')) as IPublishPacket).payload.toString()).toBe('2');
      raw.end();
    });

    it('MQTT-3.1.2-24 never sends a packet above the client Maximum Packet Size, MQTT-3.1.2-25 dropping it as if delivered', async () => {
      const topic = unique('too-large');
      const { client, received } = await connectCollecting(broker.url, { ...v5, properties: { maximumPacketSize: 64 } });
      await client.subscribeAsync(topic, { qos: 1 });
      const before = broker.broker.stats().limits.clientMaximumPacketSize;
      await client.publishAsync(topic, 'x'.repeat(100), { qos: 1 });
      await client.publishAsync(topic, 'small', { qos: 1 });
      await waitFor(() => received.length === 1);
      await sleep(50);
      expect(received.map((message) => message.payload)).toEqual(['small']);
      expect(broker.broker.stats().limits.clientMaximumPacketSize).toBe(before + 1);
    });

    it('MQTT-3.2.2-15 answers a packet above our Maximum Packet Size with DISCONNECT 0x95, before reading it', async () => {
      const { client, connack } = await connectCollecting(broker.url, v5);
      expect(connack.properties?.maximumPacketSize).toBe(2048);
      const disconnect = disconnectOf(client);
      client.publish('big', Buffer.alloc(4096));
      expect((await disconnect).reasonCode).toBe(0x95);
    });

    it('MQTT 3.3.1.2 answers a PUBLISH above the Maximum QoS with DISCONNECT 0x9B', async () => {
      const limited = await startBroker({ limits: { maximumQoS: 1 } });
      try {
        const raw = await RawClient.open(limited.port, 5);
        expect((await raw.connect()).properties?.maximumQoS).toBe(1);
        raw.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, messageId: 1, retain: false, dup: false });
        expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x9b });
      } finally {
        await limited.close();
      }
    });

    it('MQTT-4.4.0-2 never resends a message the client refused with PUBREC 0x80 or more', async () => {
      const clientId = unique('refusing-client');
      const topic = unique('refused-delivery');
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2, nl: false, rap: false, rh: 0 }] });
      await raw.next('suback');
      const publisher = await connectClient(broker.url, v5);
      await publisher.publishAsync(topic, 'refused', { qos: 2 });
      const publish = (await raw.next('publish')) as IPublishPacket;
      raw.send({ cmd: 'pubrec', messageId: publish.messageId as number, reasonCode: 0x80 });
      await sleep(50);
      expect(raw.packets.filter((packet) => packet.cmd === 'pubrel')).toEqual([]);
      raw.end();
      await raw.closed;
      const again = await RawClient.open(broker.port, 5);
      await again.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      await sleep(100);
      expect(again.packets.filter((packet) => packet.cmd === 'publish' || packet.cmd === 'pubrel')).toEqual([]);
      again.end();
    });

    it('MQTT-4.3.3-9 treats a PUBLISH with the id of one refused by PUBREC 0x80 or more as a new message', async () => {
      let refuse = true;
      const picky = await startBroker({}, { ...allowAll(), authorizePublish: () => (refuse ? { reasonCode: 0x97 } : true) });
      try {
        const raw = await RawClient.open(picky.port, 5);
        await raw.connect();
        raw.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, messageId: 3, retain: false, dup: false });
        expect(await raw.next('pubrec')).toMatchObject({ messageId: 3, reasonCode: 0x97 });
        refuse = false;
        raw.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, messageId: 3, retain: false, dup: true });
        expect(await raw.next('pubrec')).toMatchObject({ messageId: 3, reasonCode: 0 });
        raw.end();
      } finally {
        await picky.close();
      }
    });
  });

  describe('errors', () => {
    it('MQTT-4.13.1-1 closes the connection on a malformed packet, after DISCONNECT 0x81', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      // A SUBSCRIBE whose filter length runs past the packet.
      raw.write([0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x09, 0x61]);
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x81 });
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT 2.2.2.2 treats a property not allowed in its packet as malformed (0x81), and a repeated one as a protocol error (0x82)', async () => {
      const notAllowed = await RawClient.open(broker.port, 5);
      await notAllowed.connect();
      // PUBLISH with a Session Expiry Interval property (0x11).
      notAllowed.write([0x30, 0x0a, 0x00, 0x01, 0x74, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01, 0x78]);
      expect(await notAllowed.next('disconnect')).toMatchObject({ reasonCode: 0x81 });
      const repeated = await RawClient.open(broker.port, 5);
      await repeated.connect();
      // PUBLISH with two Content Type properties.
      repeated.write([0x30, 0x0c, 0x00, 0x01, 0x74, 0x08, 0x03, 0x00, 0x01, 0x61, 0x03, 0x00, 0x01, 0x62]);
      expect(await repeated.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
    });

    it('MQTT-1.5.4-1 closes the connection on ill-formed UTF-8 and MQTT-1.5.4-2 on U+0000 in a UTF-8 string', async () => {
      for (const topic of [[0xed, 0xa0, 0x80], [0x61, 0x00]]) {
        const raw = await RawClient.open(broker.port, 5);
        await raw.connect();
        raw.write([0x30, 3 + topic.length + 1, 0x00, topic.length, ...topic, 0x00, 0x78]);
        expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x81 });
      }
    });

    it('MQTT-3.3.1-4 closes the connection on a PUBLISH with both QoS bits set (0x81)', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.write([0x36, 0x07, 0x00, 0x01, 0x74, 0x00, 0x01, 0x00, 0x68]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-4.8.2-1 and MQTT-4.8.2-2 refuse a malformed shared subscription filter (SUBACK 0x8F)', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: ['$share//x', '$share/g', '$share/g/', '$share/a#/x'].map((topic) => ({ topic, qos: 0 as const, nl: false, rap: false, rh: 0 })),
      });
      expect(await raw.next('suback')).toMatchObject({ granted: [0x8f, 0x8f, 0x8f, 0x8f] });
      raw.end();
    });
  });

  describe('shared subscriptions', () => {
    it('MQTT 4.8.2 sends each message to one member of a shared subscription, and no retained message on subscribe', async () => {
      const topic = unique('shared');
      const publisher = await connectClient(broker.url, v5);
      await publisher.publishAsync(topic, 'retained', { qos: 1, retain: true });
      const members = await Promise.all([connectClient(broker.url, v5), connectClient(broker.url, v5), connectClient(broker.url, v5)]);
      const received = members.map((member) => collect(member));
      for (const member of members) await member.subscribeAsync(`$share/workers/${topic}`, { qos: 1 });
      for (let index = 0; index < 30; index++) await publisher.publishAsync(topic, String(index), { qos: 1 });
      await waitFor(() => received.reduce((sum, list) => sum + list.length, 0) === 30);
      await sleep(100);
      const all = received.flat().map((message) => Number(message.payload));
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, index) => index));
      for (const list of received) expect(list.length).toBeGreaterThan(0);
      await publisher.publishAsync(topic, '', { qos: 1, retain: true });
    });

    it('MQTT-4.8.2-3 sends each member at the QoS granted to its own subscription', async () => {
      const topic = unique('shared-qos');
      const member = await connectClient(broker.url, v5);
      const received = collect(member);
      await member.subscribeAsync(`$share/g/${topic}`, { qos: 0 });
      const publisher = await connectClient(broker.url, v5);
      await publisher.publishAsync(topic, 'x', { qos: 2 });
      await waitFor(() => received.length === 1);
      expect(received[0]?.qos).toBe(0);
    });
  });
});
