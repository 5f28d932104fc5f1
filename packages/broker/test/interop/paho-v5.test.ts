import type { IPublishPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConformanceServer, type ConformanceServer } from '../../src/conformance/conformance-server.js';
import { RawClient } from '../helpers/raw-client.js';
import { clientPool, collect, disconnectOf, sleep, unique, waitFor } from '../helpers/test-broker.js';

/**
 * The 27 scenarios of the Eclipse Paho MQTT 5.0 interoperability suite (interoperability/client_test5.py),
 * replayed against the conformance runner's engine with MQTT.js and raw packets. Topics and client
 * ids are unique per test so the scenarios run side by side; long sleeps are shortened.
 */
describe.concurrent('Paho interoperability scenarios, MQTT 5.0, against the conformance runner', () => {
  let server: ConformanceServer;
  let url: string;
  const v5 = { protocolVersion: 5 as const };
  const topicsOf = (prefix: string) => ({
    topics: ['TopicA', 'TopicA/B', 'Topic/C', 'TopicA/C', '/TopicA'].map((topic) => `${prefix}/${topic}`),
    wildtopics: ['TopicA/+', '+/C', '#', '/#', '/+', '+/+', 'TopicA/#'].map((topic) => `${prefix}/${topic}`),
  });

  beforeAll(async () => {
    server = await startConformanceServer({ port: 0, denySubscribe: ['test/nosubscribe'] });
    url = server.urls[0] as string;
  });
  afterAll(() => server.close());

  it('test_basic: publish at QoS 0, 1, 2 to itself; a second CONNECT and a wrong protocol name fail', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('basic'));
    const { client, connack, received } = await pool.connectCollecting(url, { ...v5, clientId: unique('myclientid') });
    expect(connack.reasonCode).toBe(0);
    await client.subscribeAsync(topics[0] as string, { qos: 2 });
    for (const qos of [0, 1, 2] as const) await client.publishAsync(topics[0] as string, `qos ${qos}`, { qos });
    await waitFor(() => received.length === 3);
    const second = await RawClient.open(server.port, 5);
    await second.connect();
    second.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: unique('again'), clean: true, keepalive: 0 });
    expect(await second.closesWithin()).toBe(true);
    const wrongName = await RawClient.open(server.port, 5);
    wrongName.write([0x10, 0x0d, 0x00, 0x02, 0x68, 0x6a, 0x05, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62]);
    expect(await wrongName.closesWithin()).toBe(true);
  });

  it('test_retained_message: retained at each QoS with user properties kept', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('retained'));
    const a = await pool.connect(url, v5);
    const userProperties = { a: '2', c: '3' };
    for (const [index, qos] of [0, 1, 2].entries()) await a.publishAsync(topics[index + 1] as string, `qos ${qos}`, { qos: qos as 0 | 1 | 2, retain: true, properties: { userProperties } });
    const received = collect(a);
    await a.subscribeAsync(wildtopics[5] as string, { qos: 2 });
    await waitFor(() => received.length === 3);
    for (const message of received) expect(message.properties?.userProperties).toEqual(userProperties);
    expect(received.map((message) => message.qos).sort()).toEqual([0, 1, 2]);
  });

  it('test_will_message: the will, with its user properties in order, follows a keep alive timeout', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('will'));
    const b = await pool.connect(url, v5);
    const received = collect(b);
    await b.subscribeAsync(topics[2] as string, { qos: 2 });
    const a = await RawClient.open(server.port, 5);
    await a.connect({
      keepalive: 2,
      will: { topic: topics[2] as string, payload: Buffer.from('will message'), qos: 0, retain: false, properties: { willDelayInterval: 0, userProperties: { a: '2', c: '3' } } },
    });
    await waitFor(() => received.length === 1, 6000);
    expect(Object.entries(received[0]?.properties?.userProperties as object)).toEqual([
      ['a', '2'],
      ['c', '3'],
    ]);
    a.end();
  });

  it('test_zero_length_clientid: accepted with Clean Start 0 and with Clean Start 1', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const unclean = await RawClient.open(server.port, 5);
    unclean.write([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    expect(await unclean.next('connack')).toMatchObject({ reasonCode: 0 });
    unclean.send({ cmd: 'disconnect', reasonCode: 0 });
    const clean = await pool.connect(url, { ...v5, clientId: '', clean: true });
    expect(clean.connected).toBe(true);
  });

  it('test_offline_message_queueing: QoS 1 and 2 messages wait for the session', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('offline'));
    const clientId = unique('myclientid');
    const a = await pool.connect(url, { ...v5, clientId, clean: true, properties: { sessionExpiryInterval: 99_999 } });
    await a.subscribeAsync(wildtopics[5] as string, { qos: 2 });
    await a.endAsync();
    const b = await pool.connect(url, v5);
    for (const [index, qos] of [0, 1, 2].entries()) await b.publishAsync(topics[index + 1] as string, `qos ${qos}`, { qos: qos as 0 | 1 | 2 });
    const { received } = await pool.connectCollecting(url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 99_999 } });
    await waitFor(() => received.length === 2);
    await sleep(200);
    expect([2, 3]).toContain(received.length);
  });

  it('test_overlapping_subscriptions: one message at the highest QoS', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('overlapping'));
    const a = await pool.connect(url, v5);
    const received = collect(a);
    await a.subscribeAsync({ [wildtopics[6] as string]: { qos: 2 }, [wildtopics[0] as string]: { qos: 1 } });
    await a.publishAsync(topics[3] as string, 'overlapping topic filters', { qos: 2 });
    await sleep(300);
    expect(received).toHaveLength(1);
    expect(received[0]?.qos).toBe(2);
  });

  it('test_keepalive: a silent client is disconnected and its will published', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('keepalive'));
    const b = await pool.connect(url, { ...v5, keepalive: 0 });
    const received = collect(b);
    await b.subscribeAsync(topics[4] as string, { qos: 2 });
    const a = await RawClient.open(server.port, 5);
    await a.connect({ keepalive: 2, will: { topic: topics[4] as string, payload: Buffer.from('keepalive expiry'), qos: 2, retain: false } });
    await waitFor(() => received.length === 1, 6000);
  });

  it('test_redelivery_on_reconnect: unacknowledged QoS 1 and 2 messages are sent again', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('redelivery'));
    const clientId = unique('myclientid2');
    const paused = await RawClient.open(server.port, 5);
    await paused.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 99_999 } });
    paused.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: wildtopics[6] as string, qos: 2, nl: false, rap: false, rh: 0 }] });
    await paused.next('suback');
    paused.send({ cmd: 'publish', topic: topics[1] as string, payload: Buffer.from(''), qos: 1, messageId: 2, retain: false, dup: false });
    paused.send({ cmd: 'publish', topic: topics[3] as string, payload: Buffer.from(''), qos: 2, messageId: 3, retain: false, dup: false });
    await paused.next('puback');
    await paused.next('pubrec');
    paused.send({ cmd: 'pubrel', messageId: 3 });
    await paused.next('pubcomp');
    await paused.next('publish');
    await paused.next('publish');
    paused.send({ cmd: 'disconnect', reasonCode: 0 });
    await paused.closed;
    const { received } = await pool.connectCollecting(url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 99_999 } });
    await waitFor(() => received.length === 2);
  });

  it('test_subscribe_failure: the refused filter gets reason code 0x80', async () => {
    const raw = await RawClient.open(server.port, 5);
    await raw.connect();
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'test/nosubscribe', qos: 2, nl: false, rap: false, rh: 0 }] });
    expect(await raw.next('suback')).toMatchObject({ granted: [0x80] });
    raw.end();
  });

  it('test_dollar_topics: +/+ does not match a topic starting with $', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const prefix = unique('dollar');
    const b = await pool.connect(url, { ...v5, keepalive: 0 });
    const received = collect(b);
    await b.subscribeAsync('+/+', { qos: 2 });
    await sleep(100);
    received.length = 0;
    await b.publishAsync(`$${prefix}/B`, '', { qos: 1 });
    await sleep(200);
    expect(received.filter((message) => message.topic.startsWith('$'))).toEqual([]);
  });

  it('test_unsubscribe: no more messages on the filter unsubscribed', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('unsubscribe'));
    const b = await pool.connect(url, v5);
    const received = collect(b);
    for (const topic of topics.slice(0, 3)) await b.subscribeAsync(topic, { qos: 2 });
    await b.unsubscribeAsync(topics[0] as string);
    const a = await pool.connect(url, v5);
    for (const topic of topics.slice(0, 3)) await a.publishAsync(topic, 'x', { qos: 1 });
    await waitFor(() => received.length === 2);
    await sleep(200);
    expect(received.map((message) => message.topic)).toEqual([topics[1], topics[2]]);
  });

  it('test_session_expiry: 0 ends the session at once, a positive interval keeps it that long, DISCONNECT can change it', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const clientId = unique('myclientid');
    const topic = unique('session-expiry');
    const connect = (clean: boolean, sessionExpiryInterval: number) => pool.connectCollecting(url, { ...v5, clientId, clean, properties: { sessionExpiryInterval } });
    let session = await connect(true, 0);
    expect(session.connack.sessionPresent).toBe(false);
    await session.client.subscribeAsync(topic, { qos: 2 });
    await session.client.endAsync();
    session = await connect(false, 0);
    expect(session.connack.sessionPresent).toBe(false);
    await session.client.endAsync();
    session = await connect(true, 2);
    await session.client.subscribeAsync(topic, { qos: 2 });
    await session.client.endAsync();
    await sleep(1000);
    session = await connect(false, 2);
    expect(session.connack.sessionPresent).toBe(true);
    await session.client.endAsync();
    await sleep(2600);
    session = await connect(false, 2);
    expect(session.connack.sessionPresent).toBe(false);
    await session.client.endAsync();
    session = await connect(true, 1);
    await session.client.subscribeAsync(topic, { qos: 2 });
    await session.client.endAsync(false, { properties: { sessionExpiryInterval: 3 } });
    await sleep(1500);
    session = await connect(false, 1);
    expect(session.connack.sessionPresent).toBe(true);
    await session.client.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    session = await connect(false, 1);
    expect(session.connack.sessionPresent).toBe(false);
  });

  it('test_user_properties: forwarded on every QoS', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const topic = unique('user-properties');
    const a = await pool.connect(url, v5);
    const received = collect(a);
    await a.subscribeAsync(topic, { qos: 2 });
    for (const qos of [0, 1, 2] as const) await a.publishAsync(topic, '', { qos, properties: { userProperties: { a: '2', c: '3' } } });
    await waitFor(() => received.length === 3);
    for (const message of received) expect(message.properties?.userProperties).toEqual({ a: '2', c: '3' });
  });

  it('test_payload_format: Payload Format Indicator and Content Type forwarded on every QoS', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const topic = unique('payload-format');
    const a = await pool.connect(url, v5);
    const received = collect(a);
    await a.subscribeAsync(topic, { qos: 2 });
    for (const qos of [0, 1, 2] as const) await a.publishAsync(topic, '', { qos, properties: { payloadFormatIndicator: true, contentType: 'My name' } });
    await waitFor(() => received.length === 3);
    for (const message of received) expect(message.properties).toMatchObject({ payloadFormatIndicator: true, contentType: 'My name' });
  });

  it('test_publication_expiry: expired queued messages are dropped, the others carry what is left of their interval', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const topic = unique('publication-expiry');
    const clientId = unique('myclientid2');
    const b = await pool.connect(url, { ...v5, clientId, clean: true, properties: { sessionExpiryInterval: 99_999 } });
    await b.subscribeAsync(topic, { qos: 2 });
    await b.endAsync(false, { properties: { sessionExpiryInterval: 999_999_999 } });
    const a = await pool.connect(url, v5);
    for (const [interval, qos] of [[1, 1], [1, 2], [6, 1], [6, 2]] as const) await a.publishAsync(topic, `expiry ${interval}`, { qos, properties: { messageExpiryInterval: interval } });
    await sleep(1500);
    const { received } = await pool.connectCollecting(url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 99_999 } });
    await waitFor(() => received.length === 2);
    await sleep(200);
    expect(received).toHaveLength(2);
    for (const message of received) expect(message.properties?.messageExpiryInterval).toBeLessThan(6);
  });

  it('test_subscribe_options: No Local, Retain As Published, Retain Handling 0, 1 and 2', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics, wildtopics } = topicsOf(unique('options'));
    const a = await pool.connect(url, v5);
    const fromA = collect(a);
    const b = await pool.connect(url, v5);
    const fromB = collect(b);
    await a.subscribeAsync(topics[0] as string, { qos: 2, nl: true });
    await b.subscribeAsync(topics[0] as string, { qos: 2, nl: true });
    await a.publishAsync(topics[0] as string, 'noLocal test', { qos: 1 });
    await waitFor(() => fromB.length === 1);
    await sleep(100);
    expect(fromA).toEqual([]);

    const rap = await pool.connect(url, v5);
    const fromRap = collect(rap);
    await rap.subscribeAsync(topics[0] as string, { qos: 2, rap: true });
    await rap.publishAsync(topics[0] as string, 'retain as published false', { qos: 1, retain: false });
    await rap.publishAsync(topics[0] as string, 'retain as published true', { qos: 1, retain: true });
    await waitFor(() => fromRap.length === 2);
    expect(fromRap.map((message) => message.retain)).toEqual([false, true]);
    await rap.publishAsync(topics[0] as string, '', { qos: 1, retain: true });

    const rh = await pool.connect(url, v5);
    const fromRh = collect(rh);
    for (const [index, qos] of [0, 1, 2].entries()) await rh.publishAsync(topics[index + 1] as string, `qos ${qos}`, { qos: qos as 0 | 1 | 2, retain: true });
    await rh.subscribeAsync(wildtopics[5] as string, { qos: 2, rh: 1 });
    await waitFor(() => fromRh.length === 3);
    await rh.subscribeAsync(wildtopics[5] as string, { qos: 2, rh: 1 });
    await sleep(200);
    expect(fromRh).toHaveLength(3);
    const rh2 = await pool.connect(url, v5);
    const fromRh2 = collect(rh2);
    await rh2.subscribeAsync(wildtopics[5] as string, { qos: 2, rh: 2 });
    await rh2.subscribeAsync(wildtopics[5] as string, { qos: 2, rh: 2 });
    await sleep(200);
    expect(fromRh2).toEqual([]);
    const rh0 = await pool.connect(url, v5);
    const fromRh0 = collect(rh0);
    await rh0.subscribeAsync(wildtopics[5] as string, { qos: 2, rh: 0 });
    await waitFor(() => fromRh0.length === 3);
    await rh0.subscribeAsync(wildtopics[5] as string, { qos: 2, rh: 0 });
    await waitFor(() => fromRh0.length === 6);
    for (const [index] of [0, 1, 2].entries()) await rh0.publishAsync(topics[index + 1] as string, '', { qos: 1, retain: true });
  });

  it('test_assigned_clientid: an empty client id gets an Assigned Client Identifier', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { connack } = await pool.connectCollecting(url, { ...v5, clientId: '', clean: true });
    expect(connack.properties?.assignedClientIdentifier).toBeTruthy();
  });

  it('test_subscribe_identifiers: each subscriber gets its own identifiers, all of those matching', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('subscription-identifiers'));
    const a = await pool.connect(url, v5);
    const fromA = collect(a);
    await a.subscribeAsync(topics[0] as string, { qos: 2, properties: { subscriptionIdentifier: 456_789 } });
    const b = await pool.connect(url, v5);
    const fromB = collect(b);
    await b.subscribeAsync(topics[0] as string, { qos: 2, properties: { subscriptionIdentifier: 2 } });
    await b.subscribeAsync(`${topics[0] as string}/#`, { qos: 2, properties: { subscriptionIdentifier: 3 } });
    await b.publishAsync(topics[0] as string, 'sub identifier test', { qos: 1 });
    await waitFor(() => fromA.length === 1 && fromB.length === 1);
    expect(fromA[0]?.properties?.subscriptionIdentifier).toBe(456_789);
    expect(new Set(fromB[0]?.properties?.subscriptionIdentifier as number[])).toEqual(new Set([2, 3]));
  });

  it('test_request_response: Response Topic and Correlation Data carry a request and its response', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('request-response'));
    const a = await pool.connect(url, v5);
    const fromA = collect(a);
    const b = await pool.connect(url, v5);
    const fromB = collect(b);
    await a.subscribeAsync(topics[0] as string, { qos: 2, nl: true });
    await b.subscribeAsync(topics[0] as string, { qos: 2, nl: true });
    await a.publishAsync(topics[0] as string, 'request', { qos: 1, properties: { responseTopic: topics[0] as string, correlationData: Buffer.from('334') } });
    await waitFor(() => fromB.length === 1);
    const request = fromB[0]?.properties as { responseTopic: string; correlationData: Buffer };
    expect(request.responseTopic).toBe(topics[0]);
    expect(request.correlationData.toString()).toBe('334');
    await b.publishAsync(request.responseTopic, 'response', { qos: 1, properties: { correlationData: request.correlationData } });
    await waitFor(() => fromA.length === 1);
  });

  it('test_client_topic_alias: alias 0 is refused; aliases work within a connection and not across connections', async () => {
    const { topics } = topicsOf(unique('client-alias'));
    const bad = await RawClient.open(server.port, 5);
    await bad.connect();
    bad.send({ cmd: 'publish', topic: topics[0] as string, payload: Buffer.from('topic alias 0'), qos: 1, messageId: 1, retain: false, dup: false, properties: { topicAlias: 0 } });
    expect(await bad.next('disconnect')).toMatchObject({ reasonCode: 0x94 });
    const clientId = unique('myclientid');
    const raw = await RawClient.open(server.port, 5);
    const connack = await raw.connect({ clientId, clean: true, properties: { topicAliasMaximum: 0, sessionExpiryInterval: 99_999 } });
    expect(connack.properties?.topicAliasMaximum).toBeGreaterThan(0);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0] as string, qos: 2, nl: false, rap: false, rh: 0 }] });
    await raw.next('suback');
    raw.send({ cmd: 'publish', topic: topics[0] as string, payload: Buffer.from('topic alias 1'), qos: 1, messageId: 2, retain: false, dup: false, properties: { topicAlias: 1 } });
    const first = (await raw.next('publish')) as IPublishPacket;
    expect(first).toMatchObject({ topic: topics[0], payload: Buffer.from('topic alias 1') });
    raw.send({ cmd: 'puback', messageId: first.messageId as number, reasonCode: 0 });
    raw.send({ cmd: 'publish', topic: '', payload: Buffer.from('topic alias 2'), qos: 1, messageId: 3, retain: false, dup: false, properties: { topicAlias: 1 } });
    const second = (await raw.next('publish')) as IPublishPacket;
    expect(second).toMatchObject({ topic: topics[0], payload: Buffer.from('topic alias 2') });
    raw.send({ cmd: 'puback', messageId: second.messageId as number, reasonCode: 0 });
    raw.send({ cmd: 'disconnect', reasonCode: 0 });
    await raw.closed;
    const again = await RawClient.open(server.port, 5);
    await again.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 99_999 } });
    again.send({ cmd: 'publish', topic: topics[0] as string, payload: Buffer.from('topic alias 3'), qos: 1, messageId: 4, retain: false, dup: false });
    expect(await again.next('publish')).toMatchObject({ payload: Buffer.from('topic alias 3') });
    again.send({ cmd: 'publish', topic: '', payload: Buffer.from('topic alias 4'), qos: 1, messageId: 5, retain: false, dup: false, properties: { topicAlias: 1 } });
    expect(await again.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
  });

  it('test_server_topic_alias: the server sets an alias with the first message and uses it after; none without a maximum', async () => {
    const { topics } = topicsOf(unique('server-alias'));
    for (const topicAliasMaximum of [1, undefined, 0]) {
      const raw = await RawClient.open(server.port, 5);
      await raw.connect({ properties: topicAliasMaximum === undefined ? {} : { topicAliasMaximum } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0] as string, qos: 2, nl: false, rap: false, rh: 0 }] });
      await raw.next('suback');
      for (const qos of [0, 1, 2] as const) {
        raw.send({ cmd: 'publish', topic: topics[0] as string, payload: Buffer.from('topic alias 1'), qos, messageId: qos === 0 ? undefined : 10 + qos, retain: false, dup: false });
      }
      const sent: IPublishPacket[] = [];
      for (let index = 0; index < 3; index++) {
        const publish = (await raw.next('publish')) as IPublishPacket;
        sent.push(publish);
        if (publish.qos === 1) raw.send({ cmd: 'puback', messageId: publish.messageId as number, reasonCode: 0 });
        if (publish.qos === 2) raw.send({ cmd: 'pubrec', messageId: publish.messageId as number, reasonCode: 0 });
      }
      if (topicAliasMaximum === 1) {
        expect(sent.map((packet) => [packet.topic, packet.properties?.topicAlias])).toEqual([
          [topics[0], 1],
          ['', 1],
          ['', 1],
        ]);
      } else {
        for (const packet of sent) expect(packet.properties?.topicAlias).toBeUndefined();
      }
      raw.send({ cmd: 'disconnect', reasonCode: 0 });
    }
  });

  it('test_maximum_packet_size: a message too large for the client is not sent (the server maximum is at least 65535)', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    // The suite's topic is short enough for its 32-byte message to fit in 64 bytes; so is this one.
    const topics = [`${unique('m')}/TopicA`];
    const { client, connack, received } = await pool.connectCollecting(url, { ...v5, properties: { maximumPacketSize: 64 } });
    expect(connack.properties?.maximumPacketSize).toBeGreaterThanOrEqual(65_535);
    await client.subscribeAsync(topics[0] as string, { qos: 2 });
    await client.publishAsync(topics[0] as string, '.'.repeat(32), { qos: 0 });
    await waitFor(() => received.length === 1);
    await client.publishAsync(topics[0] as string, '.'.repeat(64), { qos: 1 });
    await sleep(300);
    expect(received).toHaveLength(1);
  });

  it('test_server_keep_alive: a Keep Alive of 120 gets a Server Keep Alive of 60', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { connack } = await pool.connectCollecting(url, { ...v5, keepalive: 120 });
    expect(connack.properties?.serverKeepAlive).toBe(60);
  });

  it('test_flow_control1: no more than the client Receive Maximum in flight until one is acknowledged', async () => {
    const { topics } = topicsOf(unique('flow1'));
    const raw = await RawClient.open(server.port, 5);
    await raw.connect({ properties: { receiveMaximum: 2, sessionExpiryInterval: 0 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0] as string, qos: 2, nl: false, rap: false, rh: 0 }] });
    await raw.next('suback');
    for (let index = 1; index <= 3; index++) raw.send({ cmd: 'publish', topic: topics[0] as string, payload: Buffer.from(`message ${index}`), qos: 1, messageId: 100 + index, retain: false, dup: false });
    const first = (await raw.next('publish')) as IPublishPacket;
    const second = (await raw.next('publish')) as IPublishPacket;
    for (let index = 0; index < 3; index++) await raw.next('puback');
    await expect(raw.next('publish', 500)).rejects.toThrow();
    raw.send({ cmd: 'puback', messageId: first.messageId as number, reasonCode: 0 });
    const third = (await raw.next('publish')) as IPublishPacket;
    expect(third.qos).toBe(1);
    raw.send({ cmd: 'puback', messageId: second.messageId as number, reasonCode: 0 });
    raw.send({ cmd: 'puback', messageId: third.messageId as number, reasonCode: 0 });
    raw.send({ cmd: 'disconnect', reasonCode: 0 });
  });

  it('test_flow_control2: one QoS 2 PUBLISH beyond the server Receive Maximum gets DISCONNECT 0x93', async () => {
    const { topics } = topicsOf(unique('flow2'));
    const raw = await RawClient.open(server.port, 5);
    const connack = await raw.connect({ properties: { sessionExpiryInterval: 0 } });
    const receiveMaximum = connack.properties?.receiveMaximum ?? 65_535;
    for (let messageId = 1; messageId <= receiveMaximum + 1; messageId++) {
      raw.send({ cmd: 'publish', topic: topics[0] as string, payload: Buffer.from(`message ${messageId}`), qos: 2, messageId, retain: false, dup: false });
    }
    expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 147 });
  });

  it('test_will_delay: the will waits for its delay, or for the end of a shorter session', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const { topics } = topicsOf(unique('will-delay'));
    const b = await pool.connect(url, v5);
    const received = collect(b);
    await b.subscribeAsync(topics[0] as string, { qos: 2 });
    // [will delay, session expiry, when the will is expected (s)]: the earlier of the two.
    for (const [willDelayInterval, sessionExpiryInterval, expected] of [[1, 3, 1], [3, 0, 0], [3, 1, 1]] as const) {
      received.length = 0;
      const a = await RawClient.open(server.port, 5);
      await a.connect({
        properties: { sessionExpiryInterval },
        will: { topic: topics[0] as string, payload: Buffer.from('test_will_delay will message'), qos: 0, retain: false, properties: { willDelayInterval } },
      });
      a.end();
      const started = Date.now();
      await waitFor(() => received.length === 1, 5000);
      const elapsed = (Date.now() - started) / 1000;
      expect(elapsed).toBeGreaterThanOrEqual(expected - 0.1);
      expect(elapsed).toBeLessThan(expected + 1);
      expect(received[0]).toMatchObject({ topic: topics[0], payload: 'test_will_delay will message' });
    }
  });

  it('test_shared_subscriptions: a message on the shared filter reaches one member, one on a plain filter reaches all', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const prefix = unique('shared');
    const topics = topicsOf(prefix).topics;
    const sharedTopic = `${prefix}/x`;
    const a = await pool.connect(url, v5);
    const fromA = collect(a);
    const b = await pool.connect(url, v5);
    const fromB = collect(b);
    for (const client of [a, b]) await client.subscribeAsync({ [`$share/sharename/${sharedTopic}`]: { qos: 2 }, [topics[0] as string]: { qos: 2 } });
    await b.publishAsync(topics[0] as string, 'message 0', { qos: 0 });
    await waitFor(() => fromA.length === 1 && fromB.length === 1);
    await b.publishAsync(sharedTopic, 'message 0', { qos: 0 });
    await waitFor(() => fromA.length + fromB.length === 3);
    await sleep(300);
    expect(fromA.length + fromB.length).toBe(3);
  });

  it('server-initiated disconnect: a takeover gets DISCONNECT 0x8E', async ({ onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const clientId = unique('myclientid');
    const first = await pool.connect(url, { ...v5, clientId });
    const disconnect = disconnectOf(first);
    await pool.connect(url, { ...v5, clientId });
    expect((await disconnect).reasonCode).toBe(0x8e);
  });
});
