import type { Redis } from 'ioredis';
import type { Delivery } from '../message.js';
import { decodeDelivery, encodeDelivery } from '../records/message-records.js';
import { RedisScript } from '../redis/redis-script.js';
import type { QueueStore } from './persistence.js';
import type { RedisPersistenceKeys } from './redis-keys.js';
import { execOrThrow } from './redis-session-store.js';

/** Appends, drops the oldest beyond the limit, and lets the queue expire with its session, in one step. */
const push = new RedisScript(
  'fleetwardQueuePush',
  2,
  `local limit = tonumber(ARGV[2])
local length = redis.call('RPUSH', KEYS[1], ARGV[1])
local dropped = 0
if length > limit then
  dropped = length - limit
  if limit == 0 then redis.call('DEL', KEYS[1]) else redis.call('LTRIM', KEYS[1], dropped, -1) end
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return dropped`,
);

/** Offline queues as Redis lists of delivery records. */
export class RedisQueueStore implements QueueStore {
  readonly #redis: Redis;
  readonly #keys: RedisPersistenceKeys;

  constructor(redis: Redis, keys: RedisPersistenceKeys) {
    this.#redis = redis;
    this.#keys = keys;
    push.install(redis);
  }

  async push(clientId: string, delivery: Delivery, limit: number): Promise<number> {
    const dropped = await push.run(this.#redis, [this.#keys.queue(clientId), this.#keys.session(clientId)], [encodeDelivery(delivery), limit]);
    return Number(dropped);
  }

  async take(clientId: string): Promise<Delivery[]> {
    const key = this.#keys.queue(clientId);
    // Read and delete together: a delivery pushed in between is neither lost nor handed over twice.
    const [records] = await execOrThrow(this.#redis.multi().lrangeBuffer(key, 0, -1).del(key).exec());
    return (records as Buffer[]).map(decodeDelivery);
  }

  async clear(clientId: string): Promise<void> {
    await this.#redis.del(this.#keys.queue(clientId));
  }
}
