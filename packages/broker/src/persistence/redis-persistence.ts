import type { Redis } from 'ioredis';
import { closeRedis, DEFAULT_KEY_PREFIX, openRedis, type RedisConnectionOptions } from '../redis/redis-connection.js';
import type { Persistence } from './persistence.js';
import { RedisPersistenceKeys } from './redis-keys.js';
import { RedisQueueStore } from './redis-queue-store.js';
import { RedisRetainedStore } from './redis-retained-store.js';
import { RedisSessionStore } from './redis-session-store.js';

export type RedisPersistenceOptions = RedisConnectionOptions;

/**
 * Persistence in Redis, for nodes that share sessions, queues and retained messages. Resolves once
 * connected; rejects with a RedisUnavailableError when Redis cannot be reached at start. Later
 * outages fail the operations concerned (counted in `persistenceErrors`, a CONNECT that needs the
 * store gets 0x88) while the connection retries; nothing else stops.
 */
export async function connectRedisPersistence(options: RedisPersistenceOptions = {}): Promise<Persistence> {
  const redis = await openRedis(options, 'persistence');
  return redisPersistence(redis, new RedisPersistenceKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX));
}

function redisPersistence(redis: Redis, keys: RedisPersistenceKeys): Persistence {
  return {
    sessions: new RedisSessionStore(redis, keys),
    queues: new RedisQueueStore(redis, keys),
    retained: new RedisRetainedStore(redis, keys),
    close: () => closeRedis(redis),
  };
}
