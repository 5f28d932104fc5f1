import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConformanceServer, type ConformanceServer } from '../../src/conformance/conformance-server.js';
import { RawClient } from '../helpers/raw-client.js';
import { clientPool, collect, sleep, unique, waitFor } from '../helpers/test-broker.js';

/**
 * The scenarios of the Eclipse Paho MQTT 3.1.1 interoperability suite (interoperability/client_test.py),
 * replayed against the conformance runner's engine with MQTT.js and raw packets. Topics are
 * prefixed per test so the scenarios can run side by side; waits are shortened where the suite
 * sleeps longer than the behaviour needs.
 */
describe.concurrent('Paho interoperability scenarios, MQTT 3.1.1, against the conformance runner', () => {
  let server: ConformanceServer;
  let url: string;
  const v4 = { protocolVersion: 4 as const };
  const topicsOf = (prefix: string) => ({
    topics: ['TopicA', 'TopicA/B', 'Topic/C', 'TopicA/C', '/TopicA'].map((topic) => `${prefix}/${topic}`),
    wildtopics: ['TopicA/+', '+/C', '#', '/#', '/+', '+/+', 'TopicA/#'].map((topic) => `${prefix}/${topic}`),
  });

  beforeAll(async () => {
    server = await startConformanceServer({ port: 0, denySubscribe: ['test/nosubscribe'] });
    url = server.urls[0] as string;
  });
  afterAll(() => server.close());

  it('basic: connect, subscribe, publish at QoS 0, 1 and 2; a second CONNECT and a wrong protocol name fail', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('basic'));
    const { client, received } = await pool.connectCollecting(url, { ...v4, clientId: unique('myclientid') });
    await client.subscribeAsync(topics[0] as string, { qos: 2 });
    for (const qos of [0, 1, 2] as const) await client.publishAsync(topics[0] as string, `qos ${qos}`, { qos });
    await waitFor(() => received.length === 3);
    const second = await RawClient.open(server.port);
    await second.connect();
    second.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: unique('again'), clean: true, keepalive: 0 });
    expect(await second.closesWithin()).toBe(true);
    const wrongName = await RawClient.open(server.port);
    wrongName.write([0x10, 0x0c, 0x00, 0x02, 0x68, 0x6a, 0x04, 0x02, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62]);
    expect(await wrongName.closesWithin()).toBe(true);
  });

  it('retained messages: kept per topic at their QoS, cleared by empty retained messages', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('retained'));
    const publisher = await pool.connect(url, v4);
    for (const [index, qos] of [0, 1, 2].entries()) await publisher.publishAsync(topics[index + 1] as string, `qos ${qos}`, { qos: qos as 0 | 1 | 2, retain: true });
    const subscriber = await pool.connect(url, v4);
    const received = collect(subscriber);
    await subscriber.subscribeAsync(wildtopics[5] as string, { qos: 2 });
    await waitFor(() => received.length === 3);
    expect(received.map((message) => message.qos).sort()).toEqual([0, 1, 2]);
    for (const [index, qos] of [0, 1, 2].entries()) await publisher.publishAsync(topics[index + 1] as string, '', { qos: qos as 0 | 1 | 2, retain: true });
    const after = await pool.connect(url, v4);
    const none = collect(after);
    await after.subscribeAsync(wildtopics[5] as string, { qos: 2 });
    await sleep(200);
    expect(none).toEqual([]);
  });

  it('offline message queueing: QoS 1 and 2 messages wait for a persistent session (QoS 0 ones do not)', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('offline'));
    const clientId = unique('myclientid');
    const a = await pool.connect(url, { ...v4, clientId, clean: false });
    await a.subscribeAsync(wildtopics[5] as string, { qos: 2 });
    await a.endAsync();
    const b = await pool.connect(url, v4);
    for (const [index, qos] of [0, 1, 2].entries()) await b.publishAsync(topics[index + 1] as string, `qos ${qos}`, { qos: qos as 0 | 1 | 2 });
    const { connack, received } = await pool.connectCollecting(url, { ...v4, clientId, clean: false });
    expect(connack.sessionPresent).toBe(true);
    await waitFor(() => received.length === 2);
    await sleep(200);
    expect([2, 3]).toContain(received.length);
  });

  it('will message: published when the client goes away without DISCONNECT', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('will'));
    const b = await pool.connect(url, { ...v4, clean: false, clientId: unique('myclientid2') });
    const received = collect(b);
    await b.subscribeAsync(topics[2] as string, { qos: 2 });
    const a = await RawClient.open(server.port);
    await a.connect({ keepalive: 2, will: { topic: topics[2] as string, payload: Buffer.from('client not disconnected'), qos: 2, retain: false } });
    a.end();
    await waitFor(() => received.length === 1);
  });

  it('overlapping subscriptions: one message at the highest QoS (or one per subscription)', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('overlapping'));
    const a = await pool.connect(url, v4);
    const received = collect(a);
    await a.subscribeAsync({ [wildtopics[6] as string]: { qos: 2 }, [wildtopics[0] as string]: { qos: 1 } });
    await a.publishAsync(topics[3] as string, 'overlapping topic filters', { qos: 2 });
    await sleep(300);
    expect(received).toHaveLength(1);
    expect(received[0]?.qos).toBe(2);
  });

  it('keepalive: a silent client is disconnected and its will published', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('keepalive'));
    const b = await pool.connect(url, { ...v4, keepalive: 0 });
    const received = collect(b);
    await b.subscribeAsync(topics[4] as string, { qos: 2 });
    const a = await RawClient.open(server.port);
    await a.connect({ keepalive: 2, will: { topic: topics[4] as string, payload: Buffer.from('keepalive expiry'), qos: 2, retain: false } });
    await waitFor(() => received.length === 1, 6000);
    a.end();
  });

  it('redelivery on reconnect: unacknowledged QoS 1 and 2 messages are sent again', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('redelivery'));
    const clientId = unique('myclientid2');
    // A client that stops answering the messages it receives, like the suite's paused client.
    const paused = await RawClient.open(server.port);
    await paused.connect({ clientId, clean: false });
    paused.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: wildtopics[6] as string, qos: 2 }] });
    await paused.next('suback');
    paused.send({ cmd: 'publish', topic: topics[1] as string, payload: Buffer.from(''), qos: 1, messageId: 2, retain: false, dup: false });
    paused.send({ cmd: 'publish', topic: topics[3] as string, payload: Buffer.from(''), qos: 2, messageId: 3, retain: false, dup: false });
    await paused.next('puback');
    await paused.next('pubrec');
    paused.send({ cmd: 'pubrel', messageId: 3 });
    await paused.next('pubcomp');
    await paused.next('publish');
    await paused.next('publish');
    paused.send({ cmd: 'disconnect' });
    await paused.closed;
    const { received } = await pool.connectCollecting(url, { ...v4, clientId, clean: false });
    await waitFor(() => received.length === 2);
    expect(received.every((message) => message.dup)).toBe(true);
  });

  it('zero length clientid: refused without a clean session, accepted with one', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const refused = await RawClient.open(server.port);
    refused.write([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]);
    expect(await refused.next('connack')).toMatchObject({ returnCode: 2 });
    const accepted = await pool.connect(url, { ...v4, clientId: '', clean: true });
    expect(accepted.connected).toBe(true);
  });

  it('subscribe failure: the refused filter gets return code 0x80', async () => {
    // MQTT.js rejects the whole call on a refusal, so the SUBACK is read raw.
    const raw = await RawClient.open(server.port);
    await raw.connect();
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'test/nosubscribe', qos: 2 }] });
    expect(await raw.next('suback')).toMatchObject({ granted: [0x80] });
    raw.end();
  });

  it('$ topics: a wildcard at the first level does not match a topic starting with $', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const prefix = unique('dollar');
    const b = await pool.connect(url, { ...v4, keepalive: 0 });
    const received = collect(b);
    await b.subscribeAsync('+/+', { qos: 2 });
    await sleep(100);
    received.length = 0;
    await b.publishAsync(`$${prefix}/B`, '', { qos: 1 });
    await sleep(200);
    expect(received.filter((message) => message.topic.startsWith('$'))).toEqual([]);
  });

  it('unsubscribe: no more messages on the filter unsubscribed, the others still flow', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('unsubscribe'));
    const b = await pool.connect(url, v4);
    const received = collect(b);
    for (const topic of topics.slice(0, 3)) await b.subscribeAsync(topic, { qos: 2 });
    await b.unsubscribeAsync(topics[0] as string);
    const a = await pool.connect(url, v4);
    for (const topic of topics.slice(0, 3)) await a.publishAsync(topic, '', { qos: 1 });
    await waitFor(() => received.length === 2);
    await sleep(200);
    expect(received.map((message) => message.topic)).toEqual([topics[1], topics[2]]);
  });
});
