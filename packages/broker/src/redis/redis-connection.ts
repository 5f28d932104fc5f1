import { Redis, type RedisOptions } from 'ioredis';

/** How the broker reaches Redis; shared by the Redis persistence and the Redis cluster transport. */
export interface RedisConnectionOptions {
  /** A `redis://` or `rediss://` URL, or ioredis options (which override ours); default 127.0.0.1:6379. */
  readonly connection?: string | RedisOptions;
  /** Prefix of every key and channel, so several brokers or test runs share one Redis; default `fleetward:broker:`. */
  readonly keyPrefix?: string;
  /** Told each connection error; the connection keeps retrying by itself. Without it errors are only counted. */
  readonly onError?: (error: Error) => void;
}

export const DEFAULT_KEY_PREFIX = 'fleetward:broker:';

/** Raised at start when Redis cannot be reached: the caller should not start a node without it. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

/**
 * Our defaults fail fast rather than queue: a command issued while Redis is away waits for one
 * reconnection attempt at most, so a CONNECT is refused with 0x88 in about a second instead of
 * hanging, and nothing piles up in memory. Reconnection itself never stops.
 */
const defaults: RedisOptions = {
  lazyConnect: true,
  maxRetriesPerRequest: 1,
  connectTimeout: 5000,
  commandTimeout: 5000,
  retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
};

/** Opens one connection and waits until it is ready; rejects with a RedisUnavailableError naming the server. */
export async function openRedis(options: RedisConnectionOptions, role: string, extra: RedisOptions = {}): Promise<Redis> {
  const connection = options.connection ?? {};
  const own: RedisOptions = { ...defaults, connectionName: `fleetward-broker-${role}`, ...extra };
  const redis = typeof connection === 'string' ? new Redis(connection, own) : new Redis({ ...own, ...connection, lazyConnect: true });
  let lastError: Error | undefined;
  // An 'error' event without a listener would crash the process.
  redis.on('error', (error: Error) => {
    lastError = error;
    options.onError?.(error);
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    const reason = lastError?.message ?? (error instanceof Error ? error.message : String(error));
    throw new RedisUnavailableError(`Redis at ${describe(redis.options)} is unreachable: ${reason}`);
  }
  return redis;
}

/** Closes a connection politely, or at once when Redis is away. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // Fall through: the connection went away meanwhile.
    }
  }
  redis.disconnect();
}

function describe(options: RedisOptions): string {
  return options.path ?? `${options.host ?? '127.0.0.1'}:${options.port ?? 6379}`;
}

/** Escapes a key prefix for SCAN MATCH, whose pattern language gives `*?[]\` meaning. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
