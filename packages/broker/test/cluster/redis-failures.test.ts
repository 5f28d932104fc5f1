import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connectRedisCluster, connectRedisPersistence, RedisUnavailableError, type RedisClusterOptions } from '@fleetward/broker';
import { startNode, type TestNode } from '../helpers/cluster-nodes.js';
import { RawClient } from '../helpers/raw-client.js';
import { adminRedis, deleteRunKeys, killConnections, runPrefix } from '../helpers/redis.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { closeClients, connectClient, connectCollecting, sleep, unique, waitFor, type Received } from '../helpers/test-broker.js';

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Whether a new MQTT 5 CONNECT to the node is accepted. */
async function accepts(node: TestNode): Promise<boolean> {
  const probe = await RawClient.open(node.port, 5);
  try {
    return (await probe.connect({ clientId: unique('probe') })).reasonCode === 0;
  } catch {
    return false;
  } finally {
    probe.end();
  }
}

/** Publishes from a node and tells whether the message reached the collected subscriber soon after. */
async function arrivesFrom(node: TestNode, topic: string, received: readonly Received[]): Promise<boolean> {
  const publisher = await connectClient(node.url, { protocolVersion: 5 });
  await publisher.publishAsync(topic, 'across', { qos: 0 });
  await sleep(50);
  await publisher.endAsync();
  return received.some((message) => message.topic === topic);
}

/** What a user sees when Redis is not there, goes away, or drops the broker's connections. */
describe('a cluster when Redis fails', () => {
  const prefix = runPrefix('failures');
  const v5 = { protocolVersion: 5 as const };
  const nodes: TestNode[] = [];
  const proxies: TcpProxy[] = [];

  const node = async (...setup: Parameters<typeof startNode>): Promise<TestNode> => {
    const started = await startNode(...setup);
    nodes.push(started);
    return started;
  };

  /** A node whose persistence and cluster connections go through a proxy the test can cut. */
  const proxiedNode = async (): Promise<{ node: TestNode; proxy: TcpProxy }> => {
    const proxy = await TcpProxy.start(6379);
    proxies.push(proxy);
    const connection = { host: '127.0.0.1', port: proxy.port, retryStrategy: () => 100 };
    return { node: await node(prefix, { cluster: { connection }, persistence: { connection } }), proxy };
  };

  afterEach(closeClients);
  afterAll(async () => {
    await Promise.all(proxies.map((proxy) => proxy.restore()));
    await Promise.all(nodes.map((started) => started.close()));
    await deleteRunKeys(prefix);
  });

  it('refuses to start against a closed port, with a RedisUnavailableError naming the address', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const connection: RedisClusterOptions = { connection: { host: '127.0.0.1', port }, keyPrefix: prefix };
    await expect(connectRedisPersistence(connection)).rejects.toThrow(RedisUnavailableError);
    await expect(connectRedisCluster(connection)).rejects.toThrow(new RegExp(`Redis at 127\\.0\\.0\\.1:${port} is unreachable: .*ECONNREFUSED`));
  });

  it('a node whose Redis connections are killed keeps serving its clients, and fans out again once they reconnect', async () => {
    const a = await node(prefix);
    const b = await node(prefix, { persistence: { connection: { host: '127.0.0.1', port: 6379, connectionName: `fleetward-test-${process.pid}-killed` } } });
    const topic = unique('killed');
    const { client: subscriber, received } = await connectCollecting(b.url, v5);
    await subscriber.subscribeAsync(`${topic}/+`, { qos: 1 });
    const admin = adminRedis();
    // What a network failure or a Redis restart does to a node's three connections.
    expect(await killConnections(admin, `fleetward-broker-bus-${b.nodeId}`)).toBe(1);
    expect(await killConnections(admin, `fleetward-broker-cluster-${b.nodeId}`)).toBe(1);
    expect(await killConnections(admin, `fleetward-test-${process.pid}-killed`)).toBe(1);
    await admin.quit();
    const local = await connectClient(b.url, v5);
    await local.publishAsync(`${topic}/local`, 'served meanwhile', { qos: 0 });
    await waitFor(() => received.length === 1, 3000, 'the local message');
    // Messages sent while B was off the bus are lost for B's clients, as on a network partition; then they flow again.
    await eventually(() => arrivesFrom(a, `${topic}/remote`, received), 5000, 'a message from A after the reconnection');
  });

  it('while Redis is away, a CONNECT gets 0x88 (3.1.1: 3), a QoS 1 publish 0x80, QoS 0 still reaches local subscribers, and all recovers when Redis is back', async () => {
    const a = await node(prefix);
    const { node: c, proxy } = await proxiedNode();
    const topic = unique('away');
    const { client: subscriber, received } = await connectCollecting(c.url, v5);
    await subscriber.subscribeAsync(`${topic}/+`, { qos: 1 });
    const local = await connectClient(c.url, v5);
    await proxy.cut();

    // QoS 0 promises nothing: it still reaches this node's own subscribers.
    await local.publishAsync(`${topic}/local`, 'still routed here', { qos: 0 });
    await waitFor(() => received.length === 1, 3000, 'the local message');
    const refusedV5 = await RawClient.open(c.port, 5);
    expect(await refusedV5.connect({ clientId: unique('refused'), properties: { requestProblemInformation: true } })).toMatchObject({ reasonCode: 0x88 });
    expect(await refusedV5.closesWithin()).toBe(true);
    const refused311 = await RawClient.open(c.port, 4);
    expect(await refused311.connect({ clientId: unique('refused') })).toMatchObject({ returnCode: 3 });
    // A QoS 1 message could not reach the other nodes: refused (MQTT 5: 0x80) rather than
    // acknowledged and then lost for their subscribers, retained or not; not routed here either.
    for (const retain of [false, true]) {
      await expect(local.publishAsync(`${topic}/qos1`, 'refused', { qos: 1, retain })).rejects.toMatchObject({ code: 0x80 });
    }
    // A QoS 0 retained message that cannot be stored is dropped, and counted.
    const persistenceErrors = c.broker.stats().persistenceErrors;
    await local.publishAsync(`${topic}/retained`, 'not stored', { qos: 0, retain: true });
    await waitFor(() => c.broker.stats().persistenceErrors > persistenceErrors, 3000, 'the failed retained write');
    expect(received.map((message) => message.payload)).toEqual(['still routed here']);
    expect(c.broker.stats().clusterErrors).toBeGreaterThan(0);

    await proxy.restore();
    await eventually(() => accepts(c), 5000, 'a CONNECT accepted again');
    await eventually(() => arrivesFrom(a, `${topic}/remote`, received), 5000, 'a message from another node');
    await local.publishAsync(`${topic}/qos1`, 'accepted again', { qos: 1 });
    await waitFor(() => received.some((message) => message.payload === 'accepted again'), 3000, 'a QoS 1 message after the outage');
  });

  it('a node silent for the node timeout is taken for departed: its sessions are adopted, and it lets go of them when it is back', async () => {
    const a = await node(prefix);
    const { node: d, proxy } = await proxiedNode();
    const topic = unique('departed');
    const clientId = unique('stranded');
    const first = await connectClient(d.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    await waitFor(() => d.broker.stats().offlineSessions === 1, 3000, 'the offline session');
    await proxy.cut();
    // The other nodes notice the silence after the node timeout (1 s here) and adopt the session.
    await waitFor(() => nodes.some((other) => other !== d && other.broker.stats().offlineSessions > 0), 5000, 'the session adopted');
    const publisher = await connectClient(a.url, v5);
    await publisher.publishAsync(topic, 'kept while its node was away', { qos: 1 });
    const back = await connectCollecting(a.url, { ...v5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(back.connack.sessionPresent).toBe(true);
    await waitFor(() => back.received.length === 1, 3000, 'the queued message');
    await proxy.restore();
    await waitFor(() => d.broker.stats().offlineSessions === 0, 5000, 'the departed node letting go');
    await sleep(50);
  });
});
