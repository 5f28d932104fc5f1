import type { Redis } from 'ioredis';
import { decodeSession, encodeSession } from '../records/session-record.js';
import { globEscape } from '../redis/redis-connection.js';
import type { SessionStore, StoredSession } from './persistence.js';
import type { RedisPersistenceKeys } from './redis-keys.js';

/** MQTT 5's "never expires" Session Expiry Interval (MQTT 3.1.2.11.2): no TTL then. */
const NEVER = 0xffff_ffff;
const SCAN_BATCH = 500;

/**
 * Sessions as one binary record per client id. An offline session's record, and its queue, carry
 * a Redis TTL of its expiry interval, so Redis forgets it even when no node is left to expire it.
 */
export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis;
  readonly #keys: RedisPersistenceKeys;

  constructor(redis: Redis, keys: RedisPersistenceKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async get(clientId: string): Promise<StoredSession | undefined> {
    const record = await this.#redis.getBuffer(this.#keys.session(clientId));
    return record === null ? undefined : decodeSession(record);
  }

  async put(session: StoredSession): Promise<void> {
    const key = this.#keys.session(session.clientId);
    const queue = this.#keys.queue(session.clientId);
    const record = encodeSession(session);
    const transaction = this.#redis.multi();
    // Connected (expiresAt undefined), the session lives as long as its connection: no TTL.
    if (session.expiresAt === undefined || session.expiryIntervalSeconds >= NEVER) transaction.set(key, record).persist(queue);
    else {
      const ttl = Math.max(1, session.expiryIntervalSeconds * 1000);
      transaction.set(key, record, 'PX', ttl).pexpire(queue, ttl);
    }
    await execOrThrow(transaction.exec());
  }

  async delete(clientId: string): Promise<void> {
    await this.#redis.del(this.#keys.session(clientId));
  }

  async *list(): AsyncIterable<StoredSession> {
    const match = `${globEscape(this.#keys.session(''))}*`;
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, found] = await this.#redis.scan(cursor, 'MATCH', match, 'COUNT', SCAN_BATCH);
      cursor = next;
      // SCAN may return a key twice; each session is listed once.
      const keys = found.filter((key) => !seen.has(key));
      for (const key of keys) seen.add(key);
      if (keys.length === 0) continue;
      const records = await this.#redis.mgetBuffer(keys);
      for (const record of records) if (record !== null) yield decodeSession(record);
    } while (cursor !== '0');
  }
}

/** MULTI replies carry each command's error separately; any of them fails the whole call. */
export async function execOrThrow(result: Promise<[error: Error | null, value: unknown][] | null>): Promise<unknown[]> {
  const replies = await result;
  if (replies === null) throw new Error('Redis transaction was aborted');
  return replies.map(([error, value]) => {
    if (error !== null) throw error;
    return value;
  });
}
