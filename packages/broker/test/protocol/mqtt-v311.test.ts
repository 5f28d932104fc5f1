import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';
import { closeClients, collect, connectClient, connectCollecting, sleep, startBroker, unique, waitFor, type TestBroker } from '../helpers/test-broker.js';

/** MQTT 3.1.1 (OASIS, 29 October 2014): each test is named after the statement it checks. */
describe('MQTT 3.1.1', () => {
  let broker: TestBroker;
  const v4 = { protocolVersion: 4 as const };

  beforeAll(async () => {
    broker = await startBroker({ limits: { minKeepAliveSeconds: 1 } });
  });
  afterEach(closeClients);
  afterAll(() => broker.close());

  describe('CONNECT', () => {
    it('MQTT-3.1.0-1 closes a connection whose first packet is not CONNECT', async () => {
      const raw = await RawClient.open(broker.port);
      raw.send({ cmd: 'pingreq' });
      expect(await raw.closesWithin()).toBe(true);
      expect(raw.packets).toEqual([]);
    });

    it('MQTT-3.1.0-2 closes the connection on a second CONNECT', async () => {
      const raw = await RawClient.open(broker.port);
      expect((await raw.connect()).returnCode).toBe(0);
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: unique('second'), clean: true, keepalive: 0 });
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.1.2-1 closes the connection when the protocol name is not MQTT', async () => {
      const raw = await RawClient.open(broker.port);
      // CONNECT with protocol name "hj" (as the Paho suite sends), level 4.
      raw.write([0x10, 0x0c, 0x00, 0x02, 0x68, 0x6a, 0x04, 0x02, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62]);
      expect(await raw.closesWithin()).toBe(true);
      expect(raw.packets).toEqual([]);
    });

    it('MQTT-3.1.2-2 answers an unsupported protocol level with CONNACK 0x01 and closes', async () => {
      const raw = await RawClient.open(broker.port);
      raw.write([0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x07, 0x02, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62]);
      const connack = await raw.next('connack');
      expect(connack).toMatchObject({ returnCode: 1, sessionPresent: false });
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.1.2-3 closes the connection when the reserved connect flag is set', async () => {
      const raw = await RawClient.open(broker.port);
      raw.write([0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x03, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62]);
      expect(await raw.closesWithin()).toBe(true);
      expect(raw.packets).toEqual([]);
    });

    it('MQTT-3.1.2-11, MQTT-3.1.2-13, MQTT-3.1.2-15 close the connection on Will QoS or Will Retain set without the Will Flag', async () => {
      for (const flags of [0x0a, 0x22]) {
        const raw = await RawClient.open(broker.port);
        raw.write([0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, flags, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62]);
        expect(await raw.closesWithin()).toBe(true);
        expect(raw.packets).toEqual([]);
      }
    });

    it('MQTT-3.1.2-22 closes the connection on a Password Flag without a User Name Flag', async () => {
      const raw = await RawClient.open(broker.port);
      raw.write([0x10, 0x12, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x42, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62, 0x00, 0x02, 0x70, 0x77]);
      expect(await raw.closesWithin()).toBe(true);
      expect(raw.packets).toEqual([]);
    });

    it('MQTT-3.1.3-8 refuses an empty client id without a clean session (MQTT-3.1.3-7): CONNACK 0x02, then close', async () => {
      const raw = await RawClient.open(broker.port);
      // CONNECT, level 4, Clean Session 0, empty client id (mqtt-packet refuses to encode it).
      raw.write([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]);
      expect(await raw.next('connack')).toMatchObject({ returnCode: 2, sessionPresent: false });
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.1.3-6 accepts an empty client id with a clean session, assigning one', async () => {
      const client = await connectClient(broker.url, { ...v4, clientId: '', clean: true });
      expect(client.connected).toBe(true);
      const received = collect(client);
      await client.subscribeAsync('zero/id', { qos: 1 });
      await client.publishAsync('zero/id', 'hello', { qos: 1 });
      await waitFor(() => received.length === 1);
    });

    it('MQTT-3.2.0-1 sends CONNACK as the first packet', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
    });

    it('MQTT-3.1.4-2 disconnects an existing client when another connects with its client id', async () => {
      const clientId = unique('takeover');
      const first = await connectClient(broker.url, { ...v4, clientId });
      const closed = new Promise<void>((resolve) => first.once('close', () => resolve()));
      await connectClient(broker.url, { ...v4, clientId });
      await closed;
    });

    it('MQTT-3.1.4-5 does not process packets sent after a refused CONNECT', async () => {
      const topic = unique('after-refusal');
      const watcher = await connectClient(broker.url, v4);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 0 });
      const raw = await RawClient.open(broker.port);
      raw.write([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]);
      raw.send({ cmd: 'publish', topic, payload: Buffer.from('must not arrive'), qos: 0, retain: false, dup: false });
      expect(await raw.closesWithin()).toBe(true);
      await sleep(100);
      expect(received).toEqual([]);
    });
  });

  describe('sessions', () => {
    it('MQTT-3.1.2-4 resumes a session with clean session 0: MQTT-3.2.2-2 Session Present 1, subscriptions kept', async () => {
      const clientId = unique('persistent');
      const topic = unique('persistent/topic');
      const first = await connectClient(broker.url, { ...v4, clientId, clean: false });
      await first.subscribeAsync(topic, { qos: 1 });
      await first.endAsync();
      const second = await connectClient(broker.url, { ...v4, clientId, clean: false });
      const received = collect(second);
      const connack = await new Promise<boolean>((resolve) => resolve(second.connected));
      expect(connack).toBe(true);
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'kept', { qos: 1 });
      await waitFor(() => received.length === 1);
    });

    it('MQTT-3.2.2-2 sets Session Present when a stored session is resumed, and MQTT-3.2.2-1 clears it with clean session 1', async () => {
      const clientId = unique('present');
      const raw1 = await RawClient.open(broker.port);
      expect((await raw1.connect({ clientId, clean: false })).sessionPresent).toBe(false);
      raw1.send({ cmd: 'disconnect' });
      await raw1.closed;
      const raw2 = await RawClient.open(broker.port);
      expect((await raw2.connect({ clientId, clean: false })).sessionPresent).toBe(true);
      raw2.send({ cmd: 'disconnect' });
      await raw2.closed;
      const raw3 = await RawClient.open(broker.port);
      expect((await raw3.connect({ clientId, clean: true })).sessionPresent).toBe(false);
      raw3.send({ cmd: 'disconnect' });
      await raw3.closed;
      const raw4 = await RawClient.open(broker.port);
      // MQTT-3.1.2-6: the clean session ended at disconnect, so nothing is left to resume.
      expect((await raw4.connect({ clientId, clean: false })).sessionPresent).toBe(false);
      raw4.end();
    });

    it('MQTT-3.1.2-5 stores QoS 1 and 2 messages for a disconnected persistent session (QoS 0 ones are not kept)', async () => {
      const clientId = unique('offline');
      const topic = unique('offline/topic');
      const subscriber = await connectClient(broker.url, { ...v4, clientId, clean: false });
      await subscriber.subscribeAsync(topic, { qos: 2 });
      await subscriber.endAsync();
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'qos 0', { qos: 0 });
      await publisher.publishAsync(topic, 'qos 1', { qos: 1 });
      await publisher.publishAsync(topic, 'qos 2', { qos: 2 });
      const { received } = await connectCollecting(broker.url, { ...v4, clientId, clean: false });
      await waitFor(() => received.length === 2);
      await sleep(100);
      expect(received.map((message) => [message.payload, message.qos])).toEqual([
        ['qos 1', 1],
        ['qos 2', 2],
      ]);
    });
  });

  describe('Will Message', () => {
    it('MQTT-3.1.2-8 publishes the Will Message when the network connection closes without DISCONNECT', async () => {
      const topic = unique('will');
      const watcher = await connectClient(broker.url, v4);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const raw = await RawClient.open(broker.port);
      await raw.connect({ will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false } });
      raw.end();
      await waitFor(() => received.length === 1);
      expect(received[0]).toMatchObject({ topic, payload: 'gone', qos: 1 });
    });

    it('MQTT-3.1.2-10 (and MQTT-3.14.4-3) discards the Will Message on DISCONNECT', async () => {
      const topic = unique('will-discarded');
      const watcher = await connectClient(broker.url, v4);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const raw = await RawClient.open(broker.port);
      await raw.connect({ will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false } });
      raw.send({ cmd: 'disconnect' });
      await raw.closed;
      await sleep(150);
      expect(received).toEqual([]);
    });

    it('MQTT-3.1.2-17 publishes a Will Message with Will Retain 1 as a retained message', async () => {
      const topic = unique('will-retained');
      const raw = await RawClient.open(broker.port);
      await raw.connect({ will: { topic, payload: Buffer.from('last words'), qos: 0, retain: true } });
      raw.end();
      await sleep(100);
      const late = await connectClient(broker.url, v4);
      const received = collect(late);
      await late.subscribeAsync(topic, { qos: 0 });
      await waitFor(() => received.length === 1);
      expect(received[0]).toMatchObject({ payload: 'last words', retain: true });
    });

    it('MQTT-3.1.2-24 closes a connection silent for 1.5 times its Keep Alive, publishing its Will Message', async () => {
      const topic = unique('keepalive');
      const watcher = await connectClient(broker.url, v4);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 0 });
      const raw = await RawClient.open(broker.port);
      await raw.connect({ keepalive: 1, will: { topic, payload: Buffer.from('timed out'), qos: 0, retain: false } });
      const started = Date.now();
      expect(await raw.closesWithin(4000)).toBe(true);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      await waitFor(() => received.length === 1);
    });
  });

  describe('PUBLISH', () => {
    it('MQTT-3.3.1-1 resends unacknowledged QoS 1 messages on reconnect with DUP 1 (MQTT-4.4.0-1)', async () => {
      const clientId = unique('redeliver');
      const topic = unique('redeliver/topic');
      const raw = await RawClient.open(broker.port);
      await raw.connect({ clientId, clean: false });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      await raw.next('suback');
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'not acknowledged', { qos: 1 });
      const first = await raw.next('publish');
      expect(first).toMatchObject({ dup: false, qos: 1 });
      raw.end();
      await raw.closed;
      const again = await RawClient.open(broker.port);
      expect((await again.connect({ clientId, clean: false })).sessionPresent).toBe(true);
      const resent = await again.next('publish');
      expect(resent).toMatchObject({ dup: true, qos: 1, messageId: (first as { messageId: number }).messageId, topic });
      again.end();
    });

    it('MQTT-4.4.0-1 resends PUBREL for a QoS 2 message whose PUBCOMP did not arrive', async () => {
      const clientId = unique('pubrel');
      const topic = unique('pubrel/topic');
      const raw = await RawClient.open(broker.port);
      await raw.connect({ clientId, clean: false });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
      await raw.next('suback');
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'exactly once', { qos: 2 });
      const publish = (await raw.next('publish')) as { messageId: number };
      raw.send({ cmd: 'pubrec', messageId: publish.messageId });
      await raw.next('pubrel');
      raw.end();
      await raw.closed;
      const again = await RawClient.open(broker.port);
      await again.connect({ clientId, clean: false });
      expect(await again.next('pubrel')).toMatchObject({ messageId: publish.messageId });
      again.send({ cmd: 'pubcomp', messageId: publish.messageId });
      await sleep(50);
      expect(again.packets.filter((packet) => packet.cmd === 'publish')).toEqual([]);
      again.end();
    });

    it('MQTT-3.3.1-2 closes the connection on a QoS 0 PUBLISH with DUP 1', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x38, 0x05, 0x00, 0x01, 0x74, 0x68, 0x69]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.3.1-4 closes the connection on a PUBLISH with both QoS bits set', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x36, 0x07, 0x00, 0x01, 0x74, 0x00, 0x01, 0x68, 0x69]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.3.2-2 closes the connection on a PUBLISH topic with a wildcard', async () => {
      for (const topic of ['a/+', 'a/#', '#']) {
        const raw = await RawClient.open(broker.port);
        await raw.connect();
        raw.send({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
        expect(await raw.closesWithin()).toBe(true);
      }
    });

    it('MQTT-4.7.3-1 closes the connection on an empty PUBLISH topic', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x30, 0x04, 0x00, 0x00, 0x68, 0x69]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-1.5.3-1 closes the connection on a topic that is not well-formed UTF-8', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x30, 0x06, 0x00, 0x02, 0xc3, 0x28, 0x68, 0x69]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-1.5.3-2 closes the connection on a topic holding U+0000', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x30, 0x06, 0x00, 0x02, 0x61, 0x00, 0x68, 0x69]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-2.3.1-1 closes the connection on a QoS 1 PUBLISH, a SUBSCRIBE or an UNSUBSCRIBE with Packet Identifier 0', async () => {
      for (const bytes of [[0x32, 0x06, 0x00, 0x01, 0x74, 0x00, 0x00, 0x68], [0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00], [0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, 0x61]]) {
        const raw = await RawClient.open(broker.port);
        await raw.connect();
        raw.write(bytes);
        expect(await raw.closesWithin()).toBe(true);
        expect(raw.packets).toEqual([]);
      }
    });

    it('MQTT-4.3.3-2 delivers a QoS 2 message once however often it is resent before PUBREL, and answers PUBREL with PUBCOMP', async () => {
      const topic = unique('qos2');
      const watcher = await connectClient(broker.url, v4);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 2 });
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      const publish = { cmd: 'publish' as const, topic, payload: Buffer.from('once'), qos: 2 as const, retain: false, dup: false, messageId: 7 };
      raw.send(publish);
      expect(await raw.next('pubrec')).toMatchObject({ messageId: 7 });
      raw.send({ ...publish, dup: true });
      expect(await raw.next('pubrec')).toMatchObject({ messageId: 7 });
      raw.send({ cmd: 'pubrel', messageId: 7 });
      expect(await raw.next('pubcomp')).toMatchObject({ messageId: 7 });
      await waitFor(() => received.length === 1);
      await sleep(100);
      expect(received).toHaveLength(1);
      raw.end();
    });

    it('MQTT-3.3.5-1 delivers one copy at the highest QoS of overlapping subscriptions', async () => {
      const prefix = unique('overlap');
      const client = await connectClient(broker.url, v4);
      const received = collect(client);
      await client.subscribeAsync({ [`${prefix}/#`]: { qos: 2 }, [`${prefix}/+`]: { qos: 1 } });
      await client.publishAsync(`${prefix}/c`, 'overlapping', { qos: 2 });
      await waitFor(() => received.length === 1);
      await sleep(100);
      expect(received).toHaveLength(1);
      expect(received[0]?.qos).toBe(2);
    });

    it('MQTT-4.6.0-6 forwards messages from one client on one topic in the order they were published', async () => {
      const topic = unique('ordered');
      const subscriber = await connectClient(broker.url, v4);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 1 });
      const publisher = await connectClient(broker.url, v4);
      await Promise.all(Array.from({ length: 200 }, (_, index) => publisher.publishAsync(topic, String(index), { qos: 1 })));
      await waitFor(() => received.length === 200);
      expect(received.map((message) => Number(message.payload))).toEqual(Array.from({ length: 200 }, (_, index) => index));
    });
  });

  describe('retained messages', () => {
    it('MQTT-3.3.1-5 stores a retained message and MQTT-3.3.1-6 sends it to a new subscription with MQTT-3.3.1-8 RETAIN 1', async () => {
      const topic = unique('retained');
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'first', { qos: 1, retain: true });
      await publisher.publishAsync(topic, 'latest', { qos: 1, retain: true });
      const subscriber = await connectClient(broker.url, v4);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 1 });
      await waitFor(() => received.length === 1);
      await sleep(50);
      expect(received).toEqual([expect.objectContaining({ payload: 'latest', retain: true, qos: 1 })]);
    });

    it('MQTT-3.3.1-9 sends RETAIN 0 to established subscriptions', async () => {
      const topic = unique('retain-flag');
      const subscriber = await connectClient(broker.url, v4);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 0 });
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'live', { qos: 0, retain: true });
      await waitFor(() => received.length === 1);
      expect(received[0]?.retain).toBe(false);
    });

    it('MQTT-3.3.1-10 deletes the retained message on an empty retained publish, which MQTT-3.3.1-11 never stores', async () => {
      const topic = unique('retained-deleted');
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'soon gone', { qos: 1, retain: true });
      await publisher.publishAsync(topic, '', { qos: 1, retain: true });
      const subscriber = await connectClient(broker.url, v4);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 1 });
      await sleep(150);
      expect(received).toEqual([]);
    });

    it('MQTT-3.3.1-12 neither stores nor removes a retained message for a publish with RETAIN 0', async () => {
      const topic = unique('not-retained');
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'kept', { qos: 1, retain: true });
      await publisher.publishAsync(topic, 'transient', { qos: 1, retain: false });
      const subscriber = await connectClient(broker.url, v4);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 1 });
      await waitFor(() => received.length === 1);
      expect(received[0]?.payload).toBe('kept');
    });
  });

  describe('SUBSCRIBE and UNSUBSCRIBE', () => {
    it('MQTT-3.8.1-1 closes the connection on a SUBSCRIBE with reserved flags other than 0010', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.8.3-3 closes the connection on a SUBSCRIBE without Topic Filters', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x82, 0x02, 0x00, 0x01]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.8.3-4 closes the connection on a requested QoS of 3 or reserved option bits', async () => {
      for (const options of [0x03, 0x04]) {
        const raw = await RawClient.open(broker.port);
        await raw.connect();
        raw.write([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, options]);
        expect(await raw.closesWithin()).toBe(true);
      }
    });

    it('MQTT-4.7.1-2 and MQTT-4.7.1-3 close the connection on a Topic Filter misusing wildcards', async () => {
      for (const filter of ['a/b#', 'a/#/b', 'a+', 'a/+b']) {
        const raw = await RawClient.open(broker.port);
        await raw.connect();
        raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] });
        expect(await raw.closesWithin()).toBe(true);
      }
    });

    it('MQTT-3.8.4-4 handles several Topic Filters as a sequence answered by one SUBACK, MQTT-3.8.4-5 with a return code each, in order (MQTT-3.9.3-1), 0x80 for a refused one', async () => {
      const denied = await startBroker({}, {
        admit: () => ({ admit: true, context: undefined }),
        authorizePublish: () => true,
        authorizeSubscribe: (_client, subscription) => subscription.filter !== 'test/nosubscribe',
        authorizeDelivery: () => true,
      });
      try {
        const raw = await RawClient.open(denied.port);
        await raw.connect();
        raw.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'a', qos: 2 }, { topic: 'test/nosubscribe', qos: 1 }, { topic: 'b', qos: 1 }] });
        expect(await raw.next('suback')).toMatchObject({ messageId: 3, granted: [2, 0x80, 1] });
        raw.end();
      } finally {
        await denied.close();
      }
    });

    it('MQTT-3.8.4-3 replaces an existing subscription and resends the retained messages', async () => {
      const topic = unique('resubscribe');
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'state', { qos: 1, retain: true });
      const subscriber = await connectClient(broker.url, v4);
      const received = collect(subscriber);
      await subscriber.subscribeAsync(topic, { qos: 0 });
      await waitFor(() => received.length === 1);
      await subscriber.subscribeAsync(topic, { qos: 1 });
      await waitFor(() => received.length === 2);
      await publisher.publishAsync(topic, 'live', { qos: 1 });
      await waitFor(() => received.length === 3);
      // One subscription, now at QoS 1: a single copy of the live message.
      await sleep(50);
      expect(received.map((message) => [message.payload, message.qos])).toEqual([
        ['state', 0],
        ['state', 1],
        ['live', 1],
      ]);
    });

    it('MQTT-3.10.1-1 closes the connection on an UNSUBSCRIBE with reserved flags other than 0010', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.10.3-2 closes the connection on an UNSUBSCRIBE without Topic Filters', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0xa2, 0x02, 0x00, 0x01]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.10.4-1 deletes the subscription, MQTT-3.10.4-4 answers UNSUBACK, MQTT-3.10.4-5 even when nothing matched', async () => {
      const topic = unique('unsubscribe');
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
      await raw.next('suback');
      raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [topic] });
      expect(await raw.next('unsuback')).toMatchObject({ messageId: 2 });
      raw.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['never/subscribed'] });
      expect(await raw.next('unsuback')).toMatchObject({ messageId: 3 });
      const publisher = await connectClient(broker.url, v4);
      await publisher.publishAsync(topic, 'unheard', { qos: 1 });
      await sleep(100);
      expect(raw.packets.filter((packet) => packet.cmd === 'publish')).toEqual([]);
      raw.end();
    });
  });

  describe('other packets', () => {
    it('MQTT-3.12.4-1 answers PINGREQ with PINGRESP', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
      raw.end();
    });

    it('MQTT-3.6.1-1 closes the connection on a PUBREL with reserved flags other than 0010', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0x60, 0x02, 0x00, 0x01]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.14.1-1 closes the connection on a DISCONNECT with reserved flags set', async () => {
      const raw = await RawClient.open(broker.port);
      await raw.connect();
      raw.write([0xe1, 0x00]);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-4.8.0-1 closes the connection on packets only a server sends, and on malformed lengths', async () => {
      for (const bytes of [[0x20, 0x02, 0x00, 0x00], [0x90, 0x03, 0x00, 0x01, 0x00], [0xc0, 0x01, 0x00], [0x40, 0x03, 0x00, 0x01, 0x00], [0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]]) {
        const raw = await RawClient.open(broker.port);
        await raw.connect();
        raw.write(bytes);
        expect(await raw.closesWithin()).toBe(true);
      }
    });
  });

  describe('topics beginning with $', () => {
    it('MQTT-4.7.2-1 does not match # or + at the first level with topics beginning with $', async () => {
      const topic = `$${unique('dollar')}/x`;
      const wildcards = await connectClient(broker.url, v4);
      const fromWildcards = collect(wildcards);
      await wildcards.subscribeAsync({ '#': { qos: 0 }, '+/+': { qos: 0 }, '+/#': { qos: 0 } });
      const literal = await connectClient(broker.url, v4);
      const fromLiteral = collect(literal);
      await literal.subscribeAsync(`${topic.split('/')[0] as string}/+`, { qos: 0 });
      await wildcards.publishAsync(topic, 'for the literal subscription only', { qos: 1 });
      await waitFor(() => fromLiteral.length === 1);
      await sleep(100);
      expect(fromWildcards.filter((message) => message.topic === topic)).toEqual([]);
    });
  });
});
