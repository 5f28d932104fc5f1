import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { generate, parser, type Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBroker, createMemoryPersistence } from '@fleetward/broker';
import { RawClient } from '../helpers/raw-client.js';
import { allowAll, closeClients, connectClient, connectCollecting, sleep, startBroker, unique, waitFor, type TestBroker } from '../helpers/test-broker.js';

const started: TestBroker[] = [];
afterEach(async () => {
  await closeClients();
  await Promise.all(started.splice(0).map((broker) => broker.close()));
});

/** Two streams joined back to back: what the client writes, the broker reads, and back. */
function streamPair(): { client: Duplex; server: Duplex } {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  return { client: Duplex.from({ readable: toClient, writable: toServer }), server: Duplex.from({ readable: toServer, writable: toClient }) };
}

describe('the broker engine API', () => {
  it('serves MQTT over any duplex stream, not only sockets', async () => {
    const broker = createBroker({}, allowAll());
    const { client, server } = streamPair();
    broker.handle(server, { transport: 'memory', remoteAddress: 'local', remotePort: 0 });
    const packets: Packet[] = [];
    const decode = parser();
    decode.parse(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'x', clean: true, keepalive: 0 }, { protocolVersion: 5 }));
    decode.on('packet', (packet: Packet) => packets.push(packet));
    client.on('data', (chunk: Buffer) => decode.parse(chunk));
    client.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'in-memory', clean: true, keepalive: 0 }, { protocolVersion: 5 }));
    client.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'm', qos: 1, nl: false, rap: false, rh: 0 }] }, { protocolVersion: 5 }));
    client.write(generate({ cmd: 'publish', topic: 'm', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false }, { protocolVersion: 5 }));
    await waitFor(() => packets.length === 3);
    expect(packets.map((packet) => packet.cmd)).toEqual(['connack', 'suback', 'publish']);
    expect(broker.stats()).toMatchObject({ connections: 1, clients: 1, subscriptions: 1, messagesReceived: 1, messagesDelivered: 1 });
    await broker.close();
  });

  it('turns Nagle off (TCP_NODELAY) on the sockets it is given', async () => {
    const broker = createBroker({}, allowAll());
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const raw = await RawClient.open((server.address() as AddressInfo).port);
    const [socket] = await accepted;
    const setNoDelay = vi.spyOn(socket, 'setNoDelay');
    broker.handle(socket, { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 1 });
    expect(setNoDelay).toHaveBeenCalledWith(true);
    raw.end();
    await broker.close();
    server.close();
  });

  it('counts connections, clients, sessions, subscriptions and messages in stats()', async () => {
    const broker = await startBroker();
    started.push(broker);
    const clientId = unique('stats');
    const a = await connectClient(broker.url, { protocolVersion: 5, clientId, properties: { sessionExpiryInterval: 60 } });
    await a.subscribeAsync(['s/1', 's/2'], { qos: 1 });
    await a.publishAsync('s/1', 'x', { qos: 1 });
    await waitFor(() => broker.broker.stats().messagesDelivered === 1);
    await a.endAsync();
    await waitFor(() => broker.broker.stats().clients === 0);
    expect(broker.broker.stats()).toMatchObject({ clients: 0, offlineSessions: 1, subscriptions: 2, connectionsAccepted: 1, messagesReceived: 1, messagesDelivered: 1 });
  });

  it('close() tells MQTT 5 clients 0x8B, refuses new streams, and leaves sessions in persistence for the next start', async () => {
    const persistence = createMemoryPersistence();
    const first = await startBroker({ persistence });
    const clientId = unique('restart');
    const subscriber = await RawClient.open(first.port, 5);
    await subscriber.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    subscriber.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'restart/topic', qos: 1, nl: false, rap: false, rh: 0 }] });
    await subscriber.next('suback');
    await first.close();
    expect(await subscriber.next('disconnect')).toMatchObject({ reasonCode: 0x8b });
    const after = new PassThrough();
    first.broker.handle(after, { transport: 'memory', remoteAddress: 'x', remotePort: 0 });
    expect(after.destroyed).toBe(true);

    // A new broker on the same persistence routes to the stored session at once, before its client returns.
    const second = await startBroker({ persistence });
    started.push(second);
    await waitFor(() => second.broker.stats().offlineSessions === 1);
    const publisher = await connectClient(second.url, { protocolVersion: 5 });
    await publisher.publishAsync('restart/topic', 'while you were away', { qos: 1 });
    const { connack, received } = await connectCollecting(second.url, { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(connack.sessionPresent).toBe(true);
    await waitFor(() => received.length === 1);
    await persistence.close();
  });

  it('keeps serving other clients while one connection misbehaves', async () => {
    const broker = await startBroker();
    started.push(broker);
    const healthy = await connectClient(broker.url, { protocolVersion: 5 });
    const offender = await RawClient.open(broker.port, 5);
    await offender.connect();
    offender.write([0xf0, 0x00]);
    expect(await offender.closesWithin()).toBe(true);
    await healthy.publishAsync('still/here', 'x', { qos: 1 });
    await sleep(10);
    expect(broker.broker.stats().protocolErrors).toBe(1);
  });
});

describe("the server's own messages: publish(message) and publishFromServer(message)", () => {
  const message = (topic: string, payload: string, retain: boolean) => ({ topic, payload: Buffer.from(payload), qos: 1 as const, retain, properties: undefined, expiresAt: undefined, publisher: undefined });

  it('routes them to subscribers, each delivery still asked of authorizeDelivery, and retains them when flagged (MQTT-3.3.1-5)', async () => {
    const asked: string[] = [];
    const broker = await startBroker({}, { ...allowAll(), authorizeDelivery: (_client, delivered) => (asked.push(delivered.topic), true) });
    started.push(broker);
    const topic = unique('server');
    const { client, received } = await connectCollecting(broker.url, { protocolVersion: 5 });
    await client.subscribeAsync(`${topic}/#`, { qos: 1 });
    broker.broker.publish(message(`${topic}/plain`, 'fire and forget', false));
    await broker.broker.publishFromServer(message(`${topic}/kept`, 'stored first', true));
    await waitFor(() => received.length === 2, 3000, 'both messages');
    expect(received.map(({ topic: name, payload }) => `${name.slice(topic.length)} ${payload}`)).toEqual(['/plain fire and forget', '/kept stored first']);
    expect(asked).toEqual([`${topic}/plain`, `${topic}/kept`]);
    const late = await connectCollecting(broker.url, { protocolVersion: 5 });
    await late.client.subscribeAsync(`${topic}/#`, { qos: 1 });
    await waitFor(() => late.received.length === 1, 3000, 'the retained message');
    expect(late.received[0]).toMatchObject({ topic: `${topic}/kept`, retain: true });
  });

  it('does not publish a retained message it cannot store: publishFromServer rejects, publish counts it', async () => {
    const broker = await startBroker({ limits: { maxRetainedMessages: 1 } });
    started.push(broker);
    const topic = unique('full');
    const { client, received } = await connectCollecting(broker.url, { protocolVersion: 5 });
    await client.subscribeAsync(`${topic}/#`, { qos: 1 });
    await broker.broker.publishFromServer(message(`${topic}/1`, 'fits', true));
    await expect(broker.broker.publishFromServer(message(`${topic}/2`, 'does not', true))).rejects.toThrow(/retained message limit/);
    broker.broker.publish(message(`${topic}/3`, 'neither', true));
    await waitFor(() => broker.broker.stats().limits.maxRetainedMessages === 2, 3000, 'two refusals counted');
    await sleep(50);
    expect(received.map((delivered) => delivered.payload)).toEqual(['fits']);
  });
});
