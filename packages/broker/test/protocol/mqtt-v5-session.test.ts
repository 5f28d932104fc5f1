import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';
import { allowAll, closeClients, collect, connectClient, connectCollecting, disconnectOf, sleep, startBroker, unique, waitFor, type TestBroker } from '../helpers/test-broker.js';

/** MQTT 5.0 (OASIS, 7 March 2019): connection, session, Will Message and enhanced authentication. */
describe('MQTT 5.0 connection and session', () => {
  let broker: TestBroker;
  const v5 = { protocolVersion: 5 as const };

  beforeAll(async () => {
    broker = await startBroker({ limits: { minKeepAliveSeconds: 1, maxKeepAliveSeconds: 60, maxSessionExpirySeconds: 3600 } });
  });
  afterEach(closeClients);
  afterAll(() => broker.close());

  describe('CONNECT and CONNACK', () => {
    it('MQTT-3.1.2-1 closes the connection when the protocol name is not MQTT', async () => {
      const raw = await RawClient.open(broker.port, 5);
      raw.write([0x10, 0x0d, 0x00, 0x02, 0x68, 0x6a, 0x05, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x61, 0x62]);
      expect(await raw.closesWithin()).toBe(true);
      expect(raw.packets).toEqual([]);
    });

    it('MQTT-3.1.4-5 acknowledges a CONNECT with CONNACK 0x00, first (MQTT-3.2.0-1), announcing the server limits (MQTT 3.2.2.3)', async () => {
      const { connack } = await connectCollecting(broker.url, v5);
      expect(connack).toMatchObject({ reasonCode: 0, sessionPresent: false });
      expect(connack.properties).toMatchObject({ receiveMaximum: 64, maximumPacketSize: 256 * 1024, topicAliasMaximum: 32 });
    });

    it('MQTT-3.1.2-4 discards an existing session on Clean Start 1 (MQTT-3.2.2-2: Session Present 0)', async () => {
      const clientId = unique('clean-start');
      const topic = unique('clean-start/topic');
      const first = await connectClient(broker.url, { ...v5, clientId, properties: { sessionExpiryInterval: 60 } });
      await first.subscribeAsync(topic, { qos: 1 });
      await first.endAsync();
      const { client, connack, received } = await connectCollecting(broker.url, { ...v5, clientId, clean: true, properties: { sessionExpiryInterval: 60 } });
      expect(connack.sessionPresent).toBe(false);
      await client.publishAsync(topic, 'no subscription left', { qos: 1 });
      await sleep(100);
      expect(received).toEqual([]);
    });

    it('MQTT-3.1.2-5 resumes an existing session on Clean Start 0 (MQTT-3.2.2-3: Session Present 1), MQTT-3.1.2-6 else makes one', async () => {
      const clientId = unique('resume');
      const topic = unique('resume/topic');
      const fresh = await connectCollecting(broker.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(fresh.connack.sessionPresent).toBe(false);
      await fresh.client.subscribeAsync(topic, { qos: 1 });
      await fresh.client.endAsync();
      const resumed = await connectCollecting(broker.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(resumed.connack.sessionPresent).toBe(true);
      await resumed.client.publishAsync(topic, 'still subscribed', { qos: 1 });
      await waitFor(() => resumed.received.length === 1);
    });

    it('MQTT-3.1.2-23 keeps the session after the connection closes while its expiry interval runs, then MQTT-4.1.0-2 discards it', async () => {
      const clientId = unique('expiry');
      const first = await connectClient(broker.url, { ...v5, clientId, clean: true, properties: { sessionExpiryInterval: 1 } });
      await first.subscribeAsync(unique('expiry/topic'), { qos: 1 });
      await first.endAsync();
      const soon = await connectCollecting(broker.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 1 } });
      expect(soon.connack.sessionPresent).toBe(true);
      await soon.client.endAsync();
      await sleep(1300);
      const late = await connectCollecting(broker.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 1 } });
      expect(late.connack.sessionPresent).toBe(false);
    });

    it('MQTT 3.1.2.11.2 ends a session with no Session Expiry Interval when its connection closes', async () => {
      const clientId = unique('no-expiry');
      const first = await connectClient(broker.url, { ...v5, clientId, clean: false });
      await first.endAsync();
      const second = await connectCollecting(broker.url, { ...v5, clientId, clean: false });
      expect(second.connack.sessionPresent).toBe(false);
    });

    it('MQTT 3.2.2.3.2 caps the Session Expiry Interval at the server maximum and says so in CONNACK', async () => {
      const { connack } = await connectCollecting(broker.url, { ...v5, clientId: unique('capped'), properties: { sessionExpiryInterval: 999_999 } });
      expect(connack.properties?.sessionExpiryInterval).toBe(3600);
    });

    it('MQTT 3.14.2.2.2 takes the Session Expiry Interval from DISCONNECT, and refuses a non-zero one after CONNECT asked for 0', async () => {
      const clientId = unique('disconnect-expiry');
      const first = await connectClient(broker.url, { ...v5, clientId, properties: { sessionExpiryInterval: 60 } });
      await first.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
      const second = await connectCollecting(broker.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(second.connack.sessionPresent).toBe(false);
      await second.client.endAsync();
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ clientId: unique('zero-expiry') });
      raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.1.3-6 assigns a client id to an empty one, MQTT-3.1.3-7 returns it in CONNACK, MQTT-3.2.2-16 unused by any session', async () => {
      const first = await connectCollecting(broker.url, { ...v5, clientId: '', properties: { sessionExpiryInterval: 60 } });
      const second = await connectCollecting(broker.url, { ...v5, clientId: '' });
      const a = first.connack.properties?.assignedClientIdentifier;
      const b = second.connack.properties?.assignedClientIdentifier;
      expect(a).toMatch(/^auto-/);
      expect(b).toMatch(/^auto-/);
      expect(a).not.toBe(b);
      // Unlike 3.1.1, MQTT 5 also accepts an empty client id with Clean Start 0.
      const raw = await RawClient.open(broker.port, 5);
      raw.write([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
      expect(await raw.next('connack')).toMatchObject({ reasonCode: 0, properties: { assignedClientIdentifier: expect.stringMatching(/^auto-/) } });
      raw.end();
    });

    it('MQTT-3.1.3-8 refuses a client id longer than the limit with CONNACK 0x85 and closes', async () => {
      const raw = await RawClient.open(broker.port, 5);
      const connack = await raw.connect({ clientId: 'x'.repeat(200) });
      expect(connack).toMatchObject({ reasonCode: 0x85, sessionPresent: false });
      expect(await raw.closesWithin()).toBe(true);
      expect(broker.broker.stats().limits.maxClientIdLengthBytes).toBeGreaterThan(0);
    });

    it('MQTT-3.1.4-3 sends DISCONNECT 0x8E to the client whose session another connection takes over', async () => {
      const clientId = unique('taken');
      const first = await connectClient(broker.url, { ...v5, clientId });
      const disconnect = disconnectOf(first);
      await connectClient(broker.url, { ...v5, clientId });
      expect((await disconnect).reasonCode).toBe(0x8e);
    });

    it('MQTT-3.2.2-6 sets Session Present 0 on a refusing CONNACK, and MQTT-3.2.2-7 closes; MQTT-3.1.4-6 ignores what follows', async () => {
      const refusing = await startBroker({}, { ...allowAll(), admit: () => ({ admit: false, reasonCode: 0x86, reasonString: 'bad credentials' }) });
      try {
        const raw = await RawClient.open(refusing.port, 5);
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: unique('refused'), clean: false, keepalive: 0 });
        raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 0 }] });
        expect(await raw.next('connack')).toMatchObject({ reasonCode: 0x86, sessionPresent: false, properties: { reasonString: 'bad credentials' } });
        expect(await raw.closesWithin()).toBe(true);
        expect(raw.packets).toEqual([]);
      } finally {
        await refusing.close();
      }
    });

    it('MQTT-3.2.2-21 sends a Server Keep Alive for a Keep Alive beyond the maximum or 0, MQTT-3.2.2-22 none otherwise', async () => {
      const tooLong = await connectCollecting(broker.url, { ...v5, keepalive: 120 });
      expect(tooLong.connack.properties?.serverKeepAlive).toBe(60);
      const none = await connectCollecting(broker.url, { ...v5, keepalive: 0 });
      expect(none.connack.properties?.serverKeepAlive).toBe(60);
      const fine = await connectCollecting(broker.url, { ...v5, keepalive: 30 });
      expect(fine.connack.properties?.serverKeepAlive).toBeUndefined();
    });

    it('MQTT-3.1.2-22 closes a connection silent for 1.5 times its Keep Alive, with DISCONNECT 0x8D', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ keepalive: 1 });
      const started = Date.now();
      expect(await raw.next('disconnect', 4000)).toMatchObject({ reasonCode: 0x8d });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      expect(await raw.closesWithin()).toBe(true);
    });

    it('MQTT-3.1.2-28 returns Response Information only when it was requested', async () => {
      const informing = await startBroker({}, { ...allowAll(), admit: () => ({ admit: true, context: undefined, responseInformation: 'replies/for-you' }) });
      try {
        const asked = await connectCollecting(informing.url, { ...v5, properties: { requestResponseInformation: true } });
        expect(asked.connack.properties?.responseInformation).toBe('replies/for-you');
        const notAsked = await connectCollecting(informing.url, v5);
        expect(notAsked.connack.properties?.responseInformation).toBeUndefined();
      } finally {
        await closeClients();
        await informing.close();
      }
    });

    it('MQTT 3.1.2.11.3 refuses a Receive Maximum of 0 as a protocol error, with CONNACK 0x82 (MQTT-3.14.0-1: no DISCONNECT before CONNACK)', async () => {
      const raw = await RawClient.open(broker.port, 5);
      const connack = await raw.connect({ properties: { receiveMaximum: 0 } });
      expect(connack.reasonCode).toBe(0x82);
      expect(await raw.closesWithin()).toBe(true);
    });
  });

  describe('Will Message', () => {
    it('MQTT-3.1.2-8 publishes the Will Message after its Will Delay Interval, with its properties (MQTT-3.1.3-10: user properties in order)', async () => {
      const topic = unique('will-delay');
      const watcher = await connectClient(broker.url, v5);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({
        properties: { sessionExpiryInterval: 10 },
        will: {
          topic,
          payload: Buffer.from('delayed'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 1, contentType: 'text/plain', userProperties: { z: '1', a: ['2', '3'] } },
        },
      });
      raw.end();
      const closedAt = Date.now();
      await waitFor(() => received.length === 1, 3000);
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(900);
      expect(received[0]?.properties).toMatchObject({ contentType: 'text/plain', userProperties: { z: '1', a: ['2', '3'] } });
      expect(Object.keys(received[0]?.properties?.userProperties as object)).toEqual(['z', 'a']);
    });

    it('MQTT-3.1.3-9 does not publish the Will Message when the session is resumed within the Will Delay Interval', async () => {
      const topic = unique('will-cancelled');
      const clientId = unique('will-cancelled');
      const watcher = await connectClient(broker.url, v5);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({
        clientId,
        clean: false,
        properties: { sessionExpiryInterval: 10 },
        will: { topic, payload: Buffer.from('never'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
      });
      raw.end();
      await sleep(200);
      await connectClient(broker.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 10 } });
      await sleep(1300);
      expect(received).toEqual([]);
    });

    it('MQTT-3.1.2-8 publishes the Will Message when the session ends before the Will Delay Interval', async () => {
      const topic = unique('will-session-end');
      const watcher = await connectClient(broker.url, v5);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect({ properties: { sessionExpiryInterval: 0 }, will: { topic, payload: Buffer.from('now'), qos: 1, retain: false, properties: { willDelayInterval: 30 } } });
      raw.end();
      await waitFor(() => received.length === 1, 1000);
    });

    it('MQTT-3.14.4-3 discards the Will Message on DISCONNECT 0x00, and publishes it on DISCONNECT 0x04', async () => {
      const topic = unique('will-disconnect');
      const watcher = await connectClient(broker.url, v5);
      const received = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 1 });
      for (const reasonCode of [0x00, 0x04]) {
        const raw = await RawClient.open(broker.port, 5);
        await raw.connect({ will: { topic, payload: Buffer.from(`after ${reasonCode}`), qos: 1, retain: false } });
        raw.send({ cmd: 'disconnect', reasonCode });
        await raw.closed;
      }
      await waitFor(() => received.length === 1);
      await sleep(100);
      expect(received.map((message) => message.payload)).toEqual(['after 4']);
    });

    it('MQTT-3.2.2-12 refuses a Will QoS above the Maximum QoS with CONNACK 0x9B', async () => {
      const limited = await startBroker({ limits: { maximumQoS: 1 } });
      try {
        const raw = await RawClient.open(limited.port, 5);
        const connack = await raw.connect({ will: { topic: 'w', payload: Buffer.from('x'), qos: 2, retain: false } });
        expect(connack.reasonCode).toBe(0x9b);
        expect(await raw.closesWithin()).toBe(true);
      } finally {
        await limited.close();
      }
    });
  });

  describe('enhanced authentication', () => {
    it('MQTT-4.12.0-1 refuses an Authentication Method it has no hook for with CONNACK 0x8C and closes', async () => {
      const raw = await RawClient.open(broker.port, 5);
      const connack = await raw.connect({ properties: { authenticationMethod: 'SCRAM-SHA-256' } });
      expect(connack.reasonCode).toBe(0x8c);
      expect(await raw.closesWithin()).toBe(true);
    });

    describe('with an authenticate hook', () => {
      let authenticating: TestBroker;
      beforeAll(async () => {
        authenticating = await startBroker(
          {},
          {
            ...allowAll(),
            // A toy challenge: the client must answer the challenge reversed. Re-authentication asks again.
            authenticate: (request) => {
              if (request.method !== 'reverse') return { outcome: 'failure', reasonCode: 0x8c };
              if (request.phase !== 'continue') return { outcome: 'continue', data: Buffer.from('abc'), state: 'abc' };
              return request.data?.toString() === 'cba' ? { outcome: 'success', data: Buffer.from('welcome') } : { outcome: 'failure', reasonCode: 0x87 };
            },
          },
        );
      });
      afterAll(() => authenticating.close());

      it('MQTT-4.12.0-2 challenges with AUTH 0x18, MQTT-4.12.0-3 takes the AUTH 0x18 answer, MQTT-4.12.0-5 confirms the method in CONNACK', async () => {
        const raw = await RawClient.open(authenticating.port, 5);
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: unique('auth'), clean: true, keepalive: 0, properties: { authenticationMethod: 'reverse' } });
        expect(await raw.next('auth')).toMatchObject({ reasonCode: 0x18, properties: { authenticationMethod: 'reverse', authenticationData: Buffer.from('abc') } });
        raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'reverse', authenticationData: Buffer.from('cba') } });
        expect(await raw.next('connack')).toMatchObject({ reasonCode: 0, properties: { authenticationMethod: 'reverse', authenticationData: Buffer.from('welcome') } });
        // MQTT 4.12.1: re-authentication, with the same method.
        raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'reverse' } });
        expect(await raw.next('auth')).toMatchObject({ reasonCode: 0x18 });
        raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'reverse', authenticationData: Buffer.from('cba') } });
        expect(await raw.next('auth')).toMatchObject({ reasonCode: 0x00 });
        raw.end();
      });

      it('MQTT-4.12.0-4 refuses a failed authentication with a CONNACK of 0x80 or more and closes', async () => {
        const raw = await RawClient.open(authenticating.port, 5);
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: unique('auth-fail'), clean: true, keepalive: 0, properties: { authenticationMethod: 'reverse' } });
        await raw.next('auth');
        raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'reverse', authenticationData: Buffer.from('abc') } });
        expect(await raw.next('connack')).toMatchObject({ reasonCode: 0x87 });
        expect(await raw.closesWithin()).toBe(true);
        expect(authenticating.broker.stats().denied.authentication).toBeGreaterThan(0);
      });

      it('MQTT-3.1.2-30 closes the connection on a packet other than AUTH or DISCONNECT during authentication', async () => {
        const raw = await RawClient.open(authenticating.port, 5);
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: unique('auth-early'), clean: true, keepalive: 0, properties: { authenticationMethod: 'reverse' } });
        await raw.next('auth');
        raw.send({ cmd: 'pingreq' });
        expect(await raw.closesWithin()).toBe(true);
      });

      it('MQTT-4.12.1-1 closes the connection on a re-authentication with another method, MQTT-4.12.1-2 on a failed one', async () => {
        for (const [method, answer] of [['other', 'cba'], ['reverse', 'wrong']] as const) {
          const raw = await RawClient.open(authenticating.port, 5);
          raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: unique('reauth'), clean: true, keepalive: 0, properties: { authenticationMethod: 'reverse' } });
          await raw.next('auth');
          raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'reverse', authenticationData: Buffer.from('cba') } });
          await raw.next('connack');
          raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: method } });
          if (method === 'reverse') {
            await raw.next('auth');
            raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'reverse', authenticationData: Buffer.from(answer) } });
          }
          expect((await raw.next('disconnect')) as { reasonCode: number }).toMatchObject({ reasonCode: method === 'other' ? 0x82 : 0x87 });
          expect(await raw.closesWithin()).toBe(true);
        }
      });
    });

    it('MQTT 3.15 closes the connection on an AUTH when CONNECT named no Authentication Method (DISCONNECT 0x82)', async () => {
      const raw = await RawClient.open(broker.port, 5);
      await raw.connect();
      raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'reverse' } });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x82 });
      expect(await raw.closesWithin()).toBe(true);
    });
  });
});
