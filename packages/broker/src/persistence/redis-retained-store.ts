import type { Redis } from 'ioredis';
import { isExpired, type Message } from '../message.js';
import { decodeMessage, encodeMessage } from '../records/message-records.js';
import { RedisScript } from '../redis/redis-script.js';
import { topicMatches } from '../topic/topic-matches.js';
import type { RetainedStore, RetainOutcome } from './persistence.js';
import type { RedisPersistenceKeys } from './redis-keys.js';

/** Replace, delete, or refuse a new topic beyond the limit: the count and the write in one step. */
const put = new RedisScript(
  'fleetwardRetainedPut',
  2,
  `if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 'deleted'
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 'full' end
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 'stored'`,
);

/** Deletes an expired message only if it is still the one read: a newer one may have replaced it meanwhile. */
const forget = new RedisScript(
  'fleetwardRetainedForget',
  2,
  `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 0`,
);

const PAGE = 1000;
/** No UTF-8 string contains the byte 0xFF: every topic starting with a prefix sorts below prefix + 0xFF. */
const AFTER_ALL = Buffer.from([0xff]);

/**
 * Retained messages in a hash (topic to record) with a sorted set of their topics in byte order.
 * A filter is matched by scanning only the topics that start with its literal levels (all of them
 * for a filter starting with a wildcard), then checking each with the reference matcher.
 */
export class RedisRetainedStore implements RetainedStore {
  readonly #redis: Redis;
  readonly #keys: RedisPersistenceKeys;

  constructor(redis: Redis, keys: RedisPersistenceKeys) {
    this.#redis = redis;
    this.#keys = keys;
    put.install(redis);
    forget.install(redis);
  }

  async put(message: Message, limit: number): Promise<RetainOutcome> {
    const record = message.payload.length === 0 ? '' : encodeMessage(message);
    const outcome = await put.run(this.#redis, [this.#keys.retained, this.#keys.retainedTopics], [message.topic, record, limit]);
    if (outcome !== 'stored' && outcome !== 'deleted' && outcome !== 'full') throw new Error(`unexpected retained outcome ${String(outcome)}`);
    return outcome;
  }

  async match(pattern: string, now: number): Promise<Message[]> {
    const topics = hasWildcard(pattern) ? await this.#candidates(literalLevels(pattern)) : [pattern];
    const matching = topics.filter((topic) => topicMatches(pattern, topic));
    const found: Message[] = [];
    for (let start = 0; start < matching.length; start += PAGE) {
      const page = matching.slice(start, start + PAGE);
      const records = await this.#redis.hmgetBuffer(this.#keys.retained, ...page);
      for (const record of records) {
        if (record === null) continue;
        const message = decodeMessage(record);
        if (!isExpired(message, now)) found.push(message);
        else await forget.run(this.#redis, [this.#keys.retained, this.#keys.retainedTopics], [message.topic, record]);
      }
    }
    return found;
  }

  /** Topics from `literal` up to `literal/` followed by anything: a superset of what the filter can match. */
  async #candidates(literal: string | undefined): Promise<string[]> {
    const last: Buffer | string = literal === undefined ? '+' : Buffer.concat([Buffer.from(`(${literal}/`), AFTER_ALL]);
    let first = literal === undefined ? '-' : `[${literal}`;
    const topics: string[] = [];
    for (;;) {
      const page = await this.#redis.zrangebylex(this.#keys.retainedTopics, first, last, 'LIMIT', 0, PAGE);
      topics.push(...page);
      if (page.length < PAGE) return topics;
      first = `(${page[page.length - 1] as string}`;
    }
  }
}

function hasWildcard(pattern: string): boolean {
  return pattern.includes('+') || pattern.includes('#');
}

/** The levels before the first wildcard, joined; undefined when the filter starts with one. */
function literalLevels(pattern: string): string | undefined {
  const levels = pattern.split('/');
  const first = levels.findIndex((level) => level === '+' || level === '#');
  return first <= 0 ? undefined : levels.slice(0, first).join('/');
}
