import { BoundedTable } from './bounded-table.js';
import { BucketRate, TokenBucket } from './token-bucket.js';

export interface ConnectRateLimiterOptions {
  readonly connectsPerMinute: number;
  /** Connects a thing may make at once after being quiet (the bucket's capacity). */
  readonly connectBurst: number;
  /** Things tracked at once; beyond it (all active) new things share one overflow bucket. */
  readonly maxTrackedThings: number;
}

export type ConnectRateVerdict = 'ok' | 'connect-rate';

/**
 * Connects per minute per thing, as a token bucket (a burst for a device that reconnects after a
 * network change, then a steady rate). Asked in `admit`, after TLS has authenticated the thing.
 * Split in `check` and `count` so that a connect refused by a later step (the connection cap)
 * costs the device no token: a device retrying against a full node must not also lose its rate.
 * Bounded like `DeviceLimiter`: an entry is forgotten only once its bucket is full again.
 */
export class ConnectRateLimiter {
  readonly #table: BoundedTable<TokenBucket>;
  readonly #overflow: TokenBucket;

  constructor(options: ConnectRateLimiterOptions, now = 0) {
    const rate = BucketRate.perMinute(options.connectsPerMinute, options.connectBurst);
    this.#overflow = new TokenBucket(rate, now);
    this.#table = new BoundedTable(options.maxTrackedThings, {
      create: (_key, at) => this.#overflow.copy(at),
      isIdle: (bucket, at) => bucket.isFull(at),
    });
  }

  /** 'connect-rate' when `thing` has no connect left now; takes nothing. */
  check(thing: string, now: number): ConnectRateVerdict {
    return this.#bucket(thing, now).canTake(1, now) ? 'ok' : 'connect-rate';
  }

  /** Counts an admitted connect of `thing` (after `check` said 'ok'). */
  count(thing: string, now: number): void {
    this.#bucket(thing, now).take(1, now);
  }

  /** Milliseconds until `thing` may connect again (0: now), e.g. for a reason string. */
  retryAfterMs(thing: string, now: number): number {
    return (this.#table.get(thing) ?? this.#overflow).waitMs(1, now);
  }

  sweep(now: number): number {
    return this.#table.sweep(now);
  }

  get tracked(): number {
    return this.#table.size;
  }

  #bucket(thing: string, now: number): TokenBucket {
    return this.#table.getOrCreate(thing, now) ?? this.#overflow;
  }
}
