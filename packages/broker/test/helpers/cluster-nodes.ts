import { connectRedisCluster, connectRedisNode, connectRedisPersistence, type BrokerHooks, type BrokerOptions, type RedisClusterOptions } from '@fleetward/broker';
import { REDIS_URL } from './redis.js';
import { startBroker, type TestBroker } from './test-broker.js';

export interface TestNode extends TestBroker {
  readonly nodeId: string;
}

export interface NodeSetup {
  readonly options?: BrokerOptions;
  readonly hooks?: BrokerHooks<undefined>;
  /** Overrides of the cluster transport's options (a proxied connection, say). */
  readonly cluster?: Partial<RedisClusterOptions>;
  /** Overrides of the persistence's options. */
  readonly persistence?: Partial<RedisClusterOptions>;
}

let nodes = 0;

/**
 * One node of a cluster on the local Redis: its own loopback listener, Redis persistence and the
 * Redis cluster transport under the test's key prefix. Timings are short, so failures show fast.
 */
export async function startNode(prefix: string, setup: NodeSetup = {}): Promise<TestNode> {
  const nodeId = `node-${process.pid}-${++nodes}`;
  const timings = { heartbeatIntervalMs: 200, nodeTimeoutMs: 1000, handoverTimeoutMs: 2000 };
  if (setup.cluster === undefined && setup.persistence === undefined) {
    // What the server does: one call from a Redis URL.
    const redis = await connectRedisNode({ url: REDIS_URL, keyPrefix: prefix, nodeId, ...timings });
    const node = await startBroker({ ...redis.options, ...setup.options }, setup.hooks);
    return { ...node, nodeId, close: () => node.close().then(() => redis.close()) };
  }
  const connection = { connection: REDIS_URL, keyPrefix: prefix };
  const persistence = await connectRedisPersistence({ ...connection, ...setup.persistence });
  const transport = await connectRedisCluster({ ...connection, nodeId, ...timings, ...setup.cluster });
  const node = await startBroker({ persistence, cluster: transport, ...setup.options }, setup.hooks);
  return {
    ...node,
    nodeId,
    close: async () => {
      await node.close();
      await persistence.close();
    },
  };
}
