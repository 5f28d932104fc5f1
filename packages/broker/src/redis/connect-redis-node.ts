import type { ClusterTransport } from '../cluster/cluster-transport.js';
import { connectRedisCluster, type RedisClusterOptions } from '../cluster/redis-cluster-transport.js';
import type { Persistence } from '../persistence/persistence.js';
import { connectRedisPersistence } from '../persistence/redis-persistence.js';

export interface RedisNodeOptions extends Omit<RedisClusterOptions, 'connection'> {
  /** The shared Redis: `redis://[:password@]host:port[/db]`, or `rediss://…` for TLS. */
  readonly url: string;
}

/** One node's share of a Redis-backed cluster: what `createBroker` needs, and how to let go of it. */
export interface RedisNode {
  readonly nodeId: string;
  /** Spread into `createBroker`'s options, next to your limits. */
  readonly options: { readonly persistence: Persistence; readonly cluster: ClusterTransport };
  /**
   * Closes the Redis persistence. Call it after `broker.close()`, which hands this node's sessions
   * to the other nodes and leaves the cluster (closing the cluster connections) itself.
   */
  close(): Promise<void>;
}

/**
 * Connects one broker node to the Redis that all nodes share, for sessions, offline queues,
 * retained messages and cross-node fan-out. Every node of a cluster must use the same Redis and
 * `keyPrefix`, and a `nodeId` of its own (random by default).
 *
 * ```ts
 * const redis = await connectRedisNode({ url: process.env.FLEETWARD_REDIS_URL, keyPrefix: 'fleetward:broker:' });
 * const broker = createBroker({ ...redis.options, limits }, hooks);
 * // on shutdown
 * await broker.close();
 * await redis.close();
 * ```
 *
 * Rejects with a `RedisUnavailableError` naming the address when Redis cannot be reached at start:
 * a node should not start without it. Later outages are handled by the broker (see README).
 */
export async function connectRedisNode(options: RedisNodeOptions): Promise<RedisNode> {
  const { url, ...rest } = options;
  const settings: RedisClusterOptions = { ...rest, connection: url };
  const persistence = await connectRedisPersistence(settings);
  let cluster: ClusterTransport;
  try {
    cluster = await connectRedisCluster(settings);
  } catch (error) {
    await persistence.close();
    throw error;
  }
  return { nodeId: cluster.nodeId, options: { persistence, cluster }, close: () => persistence.close() };
}
