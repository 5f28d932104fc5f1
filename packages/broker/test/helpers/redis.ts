import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The local Redis every Redis test uses (CI starts it). */
export const REDIS_URL = process.env.FLEETWARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** One prefix per test file run: its keys never collide with another run's, and are deleted by it. */
export function runPrefix(name: string): string {
  return `fwtest:broker:${name}:${process.pid}-${randomBytes(3).toString('hex')}:`;
}

/** A plain client for what tests do behind the broker's back: reading keys, killing connections. */
export function adminRedis(): Redis {
  const redis = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  return redis;
}

/** Deletes every key under a prefix, and returns how many there were. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Closes every connection whose CLIENT SETNAME name starts with `name`, as a failing network would. */
export async function killConnections(redis: Redis, name: string): Promise<number> {
  const list = (await redis.client('LIST')) as string;
  const ids = list
    .split('\n')
    .map((line) => Object.fromEntries(line.split(' ').map((field) => field.split('=') as [string, string])))
    .filter((fields) => fields.name?.startsWith(name) === true)
    .map((fields) => fields.id as string);
  for (const id of ids) await redis.client('KILL', 'ID', id);
  return ids.length;
}

/** Deletes a test file's keys once it is done. */
export async function deleteRunKeys(prefix: string): Promise<void> {
  const admin = adminRedis();
  try {
    await deleteKeys(admin, prefix);
  } finally {
    await admin.quit();
  }
}
