import type { IPublishPacket } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroker, type BrokerHooks, type ClientRef, type ConnectRequest, type ConnectionInfo } from '@fleetward/broker';
import { RawClient } from '../helpers/raw-client.js';
import { allowAll, closeClients, collect, connectClient, sleep, startBroker, unique, waitFor, type TestBroker } from '../helpers/test-broker.js';

const started: TestBroker<unknown>[] = [];
async function brokerWith<C>(hooks: Partial<BrokerHooks<C>>, limits = {}): Promise<TestBroker<C>> {
  const broker = await startBroker<C>({ limits }, { ...(allowAll() as unknown as BrokerHooks<C>), ...hooks });
  started.push(broker);
  return broker;
}

afterEach(async () => {
  await closeClients();
  await Promise.all(started.splice(0).map((broker) => broker.close()));
});

describe('security hooks: mandatory and deny by default', () => {
  it.each(['admit', 'authorizePublish', 'authorizeSubscribe', 'authorizeDelivery'] as const)('refuses to create a broker without %s', (missing) => {
    const hooks: Record<string, unknown> = { ...allowAll() };
    delete hooks[missing];
    expect(() => createBroker({}, hooks as unknown as BrokerHooks<undefined>)).toThrow(new RegExp(`missing mandatory hooks: ${missing}`));
  });

  it('allows only an explicit true: any other answer denies', async () => {
    const answers: unknown[] = [undefined, null, 1, 'yes', {}, { reasonCode: 0x00 }, false];
    let next = 0;
    const broker = await brokerWith({ authorizeSubscribe: () => answers[next++] as boolean });
    const raw = await RawClient.open(broker.port, 5);
    await raw.connect();
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: answers.map((_, index) => ({ topic: `t/${index}`, qos: 1 as const, nl: false, rap: false, rh: 0 })) });
    // A refusal code that is not a SUBACK failure code becomes 0x87 Not authorized.
    expect(await raw.next('suback')).toMatchObject({ granted: answers.map(() => 0x87) });
    raw.end();
  });

  it('denies when a hook throws or rejects, reporting it to onError and in stats', async () => {
    const errors: string[] = [];
    const broker = await brokerWith({
      authorizePublish: () => {
        throw new Error('policy store down');
      },
      authorizeSubscribe: () => Promise.reject(new Error('timeout')),
      onError: (error, hook) => errors.push(`${hook}: ${(error as Error).message}`),
    });
    const raw = await RawClient.open(broker.port, 5);
    await raw.connect();
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't', qos: 1, nl: false, rap: false, rh: 0 }] });
    expect(await raw.next('suback')).toMatchObject({ granted: [0x80] });
    raw.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 2, retain: false, dup: false });
    expect(await raw.next('puback')).toMatchObject({ reasonCode: 0x80 });
    expect(errors).toEqual(['authorizeSubscribe: timeout', 'authorizePublish: policy store down']);
    expect(broker.broker.stats().hookErrors).toMatchObject({ authorizePublish: 1, authorizeSubscribe: 1 });
    raw.end();
  });

  it('refuses a connection whose admission hook throws, with CONNACK 0x88 Server unavailable', async () => {
    const broker = await brokerWith({
      admit: () => {
        throw new Error('registry unreachable');
      },
    });
    const raw = await RawClient.open(broker.port, 5);
    expect((await raw.connect()).reasonCode).toBe(0x88);
    expect(await raw.closesWithin()).toBe(true);
  });
});

describe('admission', () => {
  it('hands admit the CONNECT and the connection info, and later hooks the context it attached', async () => {
    const seen: { connect?: ConnectRequest; connection?: ConnectionInfo; contexts: string[] } = { contexts: [] };
    const broker = await brokerWith<string>({
      admit: (connect, connection) => {
        seen.connect = connect;
        seen.connection = connection;
        return { admit: true, context: `thing:${connect.username ?? ''}` };
      },
      authorizePublish: (client) => {
        seen.contexts.push(`publish ${client.context}`);
        return true;
      },
      authorizeSubscribe: (client) => {
        seen.contexts.push(`subscribe ${client.context}`);
        return true;
      },
      authorizeDelivery: (client) => {
        seen.contexts.push(`delivery ${client.context}`);
        return true;
      },
    });
    const client = await connectClient(broker.url, { protocolVersion: 5, clientId: 'device-7', username: 'device-7', password: Buffer.from('secret'), keepalive: 30 });
    await client.subscribeAsync('d/7', { qos: 1 });
    const received = collect(client);
    await client.publishAsync('d/7', 'x', { qos: 1 });
    await waitFor(() => received.length === 1);
    expect(seen.connect).toMatchObject({ protocolVersion: 5, clientId: 'device-7', username: 'device-7', password: Buffer.from('secret'), cleanStart: true, keepAliveSeconds: 30 });
    expect(seen.connection).toMatchObject({ transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: expect.any(Number) });
    expect(seen.contexts).toEqual(['subscribe thing:device-7', 'publish thing:device-7', 'delivery thing:device-7']);
  });

  it.each([
    [0x86, 4],
    [0x87, 5],
    [0x8a, 5],
    [0x9f, 3],
  ] as const)('refuses with reason code 0x%s (MQTT 5), or the nearest 3.1.1 return code %s', async (reasonCode, returnCode) => {
    const broker = await brokerWith({ admit: () => ({ admit: false, reasonCode }) });
    for (const version of [5, 4] as const) {
      const raw = await RawClient.open(broker.port, version);
      const connack = await raw.connect();
      expect(version === 5 ? connack.reasonCode : connack.returnCode).toBe(version === 5 ? reasonCode : returnCode);
      expect(await raw.closesWithin()).toBe(true);
    }
    expect(broker.broker.stats().denied.connect).toBe(2);
  });
});

describe('publish and subscribe decisions', () => {
  it('MQTT-3.3.5-2 (3.1.1): a refused PUBLISH closes the network connection, whatever its QoS', async () => {
    const broker = await brokerWith({ authorizePublish: (_client, message) => !message.topic.startsWith('forbidden') });
    for (const qos of [0, 1, 2] as const) {
      const raw = await RawClient.open(broker.port, 4);
      await raw.connect();
      raw.send({ cmd: 'publish', topic: 'forbidden/x', payload: Buffer.from('x'), qos, messageId: qos === 0 ? undefined : 1, retain: false, dup: false });
      expect(await raw.closesWithin()).toBe(true);
      expect(raw.packets).toEqual([]);
    }
    expect(broker.broker.stats().denied.publish).toBe(3);
  });

  it('MQTT 5: a refused PUBLISH gets PUBACK or PUBREC 0x87 (a QoS 0 one is dropped), and the connection stays', async () => {
    const broker = await brokerWith({ authorizePublish: (_client, message) => (message.topic === 'forbidden' ? { reasonCode: 0x87, reasonString: 'not yours' } : true) });
    const watcher = await connectClient(broker.url, { protocolVersion: 5 });
    const received = collect(watcher);
    await watcher.subscribeAsync('#', { qos: 2 });
    const raw = await RawClient.open(broker.port, 5);
    await raw.connect();
    raw.send({ cmd: 'publish', topic: 'forbidden', payload: Buffer.from('0'), qos: 0, retain: false, dup: false });
    raw.send({ cmd: 'publish', topic: 'forbidden', payload: Buffer.from('1'), qos: 1, messageId: 1, retain: false, dup: false });
    raw.send({ cmd: 'publish', topic: 'forbidden', payload: Buffer.from('2'), qos: 2, messageId: 2, retain: false, dup: false });
    expect(await raw.next('puback')).toMatchObject({ messageId: 1, reasonCode: 0x87, properties: { reasonString: 'not yours' } });
    expect(await raw.next('pubrec')).toMatchObject({ messageId: 2, reasonCode: 0x87 });
    raw.send({ cmd: 'pingreq' });
    await raw.next('pingresp');
    expect(received).toEqual([]);
    raw.end();
  });

  it('must not let a device reach another device’s topics: policy by client id', async () => {
    const own = (client: ClientRef<undefined>, topic: string): boolean => topic.startsWith(`things/${client.clientId}/`);
    const broker = await brokerWith<undefined>({
      authorizePublish: (client, message) => own(client, message.topic),
      authorizeSubscribe: (client, subscription) => own(client, subscription.pattern),
      authorizeDelivery: (client, message) => own(client, message.topic),
    });
    const alice = await connectClient(broker.url, { protocolVersion: 5, clientId: 'alice' });
    const fromAlice = collect(alice);
    const granted = await alice.subscribeAsync(['things/alice/#', 'things/bob/#', 'things/+/secrets'], { qos: 1 }).catch(() => undefined);
    expect(granted).toBeUndefined();
    const raw = await RawClient.open(broker.port, 5);
    await raw.connect({ clientId: 'mallory' });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: ['things/mallory/#', 'things/alice/#', '#'].map((topic) => ({ topic, qos: 1 as const, nl: false, rap: false, rh: 0 })) });
    expect(await raw.next('suback')).toMatchObject({ granted: [1, 0x87, 0x87] });
    raw.send({ cmd: 'publish', topic: 'things/alice/commands', payload: Buffer.from('x'), qos: 1, messageId: 2, retain: false, dup: false });
    expect(await raw.next('puback')).toMatchObject({ reasonCode: 0x87 });
    await sleep(100);
    expect(fromAlice).toEqual([]);
    raw.end();
  });
});

describe('delivery decisions', () => {
  it('applies to subscriptions already live: a policy change or a revocation stops deliveries at once', async () => {
    const revoked = new Set<string>();
    const broker = await brokerWith({ authorizeDelivery: (client) => !revoked.has(client.clientId) });
    const subscriber = await connectClient(broker.url, { protocolVersion: 5, clientId: 'sensor-1' });
    const received = collect(subscriber);
    await subscriber.subscribeAsync('fleet/broadcast', { qos: 1 });
    const publisher = await connectClient(broker.url, { protocolVersion: 5 });
    await publisher.publishAsync('fleet/broadcast', 'before', { qos: 1 });
    await waitFor(() => received.length === 1);
    revoked.add('sensor-1');
    await publisher.publishAsync('fleet/broadcast', 'after', { qos: 1 });
    await sleep(100);
    expect(received.map((message) => message.payload)).toEqual(['before']);
    expect(broker.broker.stats().denied.delivery).toBe(1);
  });

  it('keeps messages in order when the decision takes varying time (MQTT-4.6.0-5)', async () => {
    const broker = await brokerWith({
      authorizeDelivery: async (_client, message) => {
        await sleep(Number(message.payload.toString()) % 3 === 0 ? 15 : 0);
        return true;
      },
      authorizePublish: async () => {
        await sleep(Math.random() * 3);
        return true;
      },
    });
    const subscriber = await connectClient(broker.url, { protocolVersion: 4 });
    const received = collect(subscriber);
    await subscriber.subscribeAsync('ordered', { qos: 1 });
    const publisher = await connectClient(broker.url, { protocolVersion: 4 });
    await Promise.all(Array.from({ length: 50 }, (_, index) => publisher.publishAsync('ordered', String(index), { qos: index % 2 === 0 ? 0 : 1 })));
    await waitFor(() => received.length === 50);
    expect(received.map((message) => Number(message.payload))).toEqual(Array.from({ length: 50 }, (_, index) => index));
  });

  it('publishes a Will Message only if authorizePublish allows it', async () => {
    const broker = await brokerWith({ authorizePublish: (_client, message) => message.topic !== 'wills/forbidden' });
    const watcher = await connectClient(broker.url, { protocolVersion: 5 });
    const received = collect(watcher);
    await watcher.subscribeAsync('wills/+', { qos: 1 });
    for (const topic of ['wills/forbidden', 'wills/allowed']) {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ will: { topic, payload: Buffer.from(topic), qos: 1, retain: false } });
      raw.end();
    }
    await waitFor(() => received.length === 1);
    await sleep(100);
    expect(received.map((message) => message.topic)).toEqual(['wills/allowed']);
  });
});

describe('disconnect(predicate, reasonCode)', () => {
  it('closes the matching live connections: MQTT 5 clients get DISCONNECT with the reason, 3.1.1 ones are closed', async () => {
    const broker = await brokerWith<string>({ admit: (connect) => ({ admit: true, context: connect.clientId.startsWith('quarantine') ? 'quarantined' : 'ok' }) });
    const v5 = await RawClient.open(broker.port, 5);
    await v5.connect({ clientId: unique('quarantine') });
    const v4 = await RawClient.open(broker.port, 4);
    await v4.connect({ clientId: unique('quarantine') });
    const bystander = await RawClient.open(broker.port, 5);
    await bystander.connect({ clientId: unique('healthy') });
    expect(broker.broker.disconnect((client) => client.context === 'quarantined', 0x98)).toBe(2);
    expect(await v5.next('disconnect')).toMatchObject({ reasonCode: 0x98 });
    expect(await v5.closesWithin()).toBe(true);
    expect(await v4.closesWithin()).toBe(true);
    expect(v4.packets).toEqual([]);
    bystander.send({ cmd: 'pingreq' });
    await bystander.next('pingresp');
    bystander.end();
    expect(() => broker.broker.disconnect(() => true, 0x04 as never)).toThrow(RangeError);
  });
});

describe('limit callbacks', () => {
  it('tells onLimit which named limit refused what, and counts it in stats', async () => {
    const events: string[] = [];
    const broker = await brokerWith({ onLimit: (event) => events.push(`${event.limit} ${event.clientId ?? '-'}`) }, { maxTopicLevels: 2 });
    const raw = await RawClient.open(broker.port, 5);
    await raw.connect({ clientId: 'deep' });
    raw.send({ cmd: 'publish', topic: 'a/b/c', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false });
    const puback = (await raw.next('puback')) as IPublishPacket & { reasonCode: number };
    expect(puback.reasonCode).toBe(0x90);
    expect(events).toEqual(['maxTopicLevels deep']);
    expect(broker.broker.stats().limits.maxTopicLevels).toBe(1);
    raw.end();
  });
});

describe('authorizePublish rewriting the payload (data minimization at ingest)', () => {
  /** Keeps only the `temp` field of a JSON reading: what a minimizing transform would do. */
  const minimize = (payload: Buffer): Buffer => Buffer.from(JSON.stringify({ temp: (JSON.parse(payload.toString()) as { temp: number }).temp }));
  const reading = Buffer.from(JSON.stringify({ temp: 21.5, owner: 'alice@example.com' }));

  it.each([
    ['synchronously', (payload: Buffer) => ({ payload: minimize(payload) })],
    ['from a promise', (payload: Buffer) => Promise.resolve({ payload: minimize(payload) })],
  ])('fans out and retains the rewritten payload, answered %s; MQTT 5 PUBACK is 0x00 Success', async (_how, rewrite) => {
    const broker = await brokerWith({ authorizePublish: (_client, message) => rewrite(message.payload) });
    const topic = unique('minimized');
    const subscriber = await connectClient(broker.url, { protocolVersion: 5 });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const publisher = await RawClient.open(broker.port, 5);
    await publisher.connect({ clientId: unique('sensor') });
    publisher.send({ cmd: 'publish', topic, payload: reading, qos: 1, messageId: 7, retain: true, dup: false });
    expect(await publisher.next('puback')).toMatchObject({ messageId: 7, reasonCode: 0x00 });
    await waitFor(() => received.length === 1, 3000, 'the rewritten message');
    expect(received[0]?.payload).toBe('{"temp":21.5}');
    // MQTT-3.3.1-5: the retained copy a later subscriber gets is the rewritten one too.
    const late = await connectClient(broker.url, { protocolVersion: 5 });
    const retained = collect(late);
    await late.subscribeAsync(topic, { qos: 1 });
    await waitFor(() => retained.length === 1, 3000, 'the retained message');
    expect(retained[0]).toMatchObject({ payload: '{"temp":21.5}', retain: true });
    expect(broker.broker.stats().denied.publish).toBe(0);
    publisher.end();
  });

  it('rewrites a Will Message as it is published, and a 3.1.1 QoS 0 publish', async () => {
    const broker = await brokerWith({ authorizePublish: (_client, message) => ({ payload: Buffer.from(`seen:${message.payload.toString()}`) }) });
    const topic = unique('rewritten');
    const subscriber = await connectClient(broker.url, { protocolVersion: 4 });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(`${topic}/#`, { qos: 1 });
    const publisher = await connectClient(broker.url, { protocolVersion: 4, will: { topic: `${topic}/will`, payload: Buffer.from('gone'), qos: 1, retain: false } });
    await publisher.publishAsync(`${topic}/data`, 'plain', { qos: 0 });
    await waitFor(() => received.length === 1, 3000, 'the rewritten message');
    // A connection lost without DISCONNECT publishes its Will (MQTT-3.1.2-8).
    publisher.stream.destroy();
    await waitFor(() => received.length === 2, 3000, 'the rewritten will');
    expect(received.map(({ topic: name, payload }) => `${name.slice(topic.length)} ${payload}`)).toEqual(['/data seen:plain', '/will seen:gone']);
  });

  it('denies an answer that is not a Buffer payload, or that also carries a refusal code (fail closed)', async () => {
    const answers: unknown[] = [{ payload: 'text' }, { payload: undefined }, { payload: Buffer.from('x'), reasonCode: 0x97 }];
    let next = 0;
    const broker = await brokerWith({ authorizePublish: () => answers[next++] as boolean });
    const topic = unique('malformed-rewrite');
    const subscriber = await connectClient(broker.url, { protocolVersion: 5 });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const publisher = await RawClient.open(broker.port, 5);
    await publisher.connect({ clientId: unique('odd') });
    const codes: number[] = [];
    for (let messageId = 1; messageId <= answers.length; messageId++) {
      publisher.send({ cmd: 'publish', topic, payload: Buffer.from('original'), qos: 1, messageId, retain: false, dup: false });
      codes.push(((await publisher.next('puback')) as { reasonCode: number }).reasonCode);
    }
    expect(codes).toEqual([0x87, 0x87, 0x97]);
    await sleep(50);
    expect(received).toEqual([]);
    expect(broker.broker.stats().denied.publish).toBe(3);
    publisher.end();
  });
});
