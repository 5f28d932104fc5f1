import { positiveInteger } from './checks.js';

/**
 * How a bucket fills: it holds at most `capacity` tokens (the burst) and gains `refill` tokens
 * every `perMs` milliseconds. All three are integers, so that the bucket can count exactly.
 */
export class BucketRate {
  readonly capacity: number;
  readonly refill: number;
  readonly perMs: number;
  /**
   * The bucket counts in units of 1/perMs token: one millisecond then adds exactly `refill` units,
   * and with integer times every sum stays an exact integer (no float drift that would let a
   * device through one message early after millions of refills).
   */
  readonly unitsPerToken: number;
  readonly capacityUnits: number;
  /** Milliseconds an empty bucket takes to fill. */
  readonly fillMs: number;

  constructor(capacity: number, refill: number, perMs: number) {
    this.capacity = positiveInteger('capacity', capacity);
    this.refill = positiveInteger('refill', refill);
    this.perMs = positiveInteger('perMs', perMs);
    this.unitsPerToken = perMs;
    this.capacityUnits = capacity * perMs;
    if (!Number.isSafeInteger(this.capacityUnits)) throw new RangeError('capacity × perMs must stay below 2^53');
    this.fillMs = Math.ceil(this.capacityUnits / refill);
  }

  static perSecond(ratePerSecond: number, burst: number): BucketRate {
    return new BucketRate(burst, ratePerSecond, 1000);
  }

  static perMinute(ratePerMinute: number, burst: number): BucketRate {
    return new BucketRate(burst, ratePerMinute, 60_000);
  }
}

/**
 * A token bucket: at most `capacity + refill × elapsed / perMs` tokens are ever taken from it, from
 * the moment it is created full. Time is passed in (integer epoch ms keeps the arithmetic exact);
 * a time earlier than one already seen counts as no time passing, so a clock step back never
 * refills it. `reserve` lets the level go below zero: the debt is the queue of callers told to wait.
 */
export class TokenBucket {
  readonly rate: BucketRate;
  #units: number;
  #updatedAt: number;

  constructor(rate: BucketRate, now: number, units: number = rate.capacityUnits) {
    this.rate = rate;
    this.#units = units;
    this.#updatedAt = now;
  }

  /** Takes `n` tokens if they are there; false (and nothing taken) otherwise. */
  take(n: number, now: number): boolean {
    if (!this.canTake(n, now)) return false;
    this.#units -= n * this.rate.unitsPerToken;
    return true;
  }

  /** Whether `n` tokens are there now, without taking them (pair with `consume` to take from two buckets at once). */
  canTake(n: number, now: number): boolean {
    this.#refill(now);
    return this.#units >= n * this.rate.unitsPerToken;
  }

  /** Takes `n` tokens unconditionally, after `canTake` or `waitMs` said when; the level may go below zero. */
  consume(n: number): void {
    this.#units -= n * this.rate.unitsPerToken;
  }

  /** Milliseconds until `n` tokens are there (0: now); Infinity when `n` exceeds the capacity. */
  waitMs(n: number, now: number): number {
    if (n > this.rate.capacity) return Number.POSITIVE_INFINITY;
    this.#refill(now);
    const missing = n * this.rate.unitsPerToken - this.#units;
    return missing <= 0 ? 0 : Math.ceil(missing / this.rate.refill);
  }

  /**
   * Books `n` tokens for the moment they will be there, if that is at most `maxWaitMs` away: returns
   * the wait (0: now), or -1 and books nothing. Later callers queue behind the booking, so a queue
   * of waiters never holds more than `maxWaitMs` of refill.
   */
  reserve(n: number, now: number, maxWaitMs: number): number {
    const wait = this.waitMs(n, now);
    if (wait > maxWaitMs) return -1;
    this.consume(n);
    return wait;
  }

  /** Removes `n` tokens as a penalty, but never below `-floorTokens`, so a penalty always ends. */
  penalize(n: number, now: number, floorTokens: number): void {
    this.#refill(now);
    this.#units = Math.max(-floorTokens * this.rate.unitsPerToken, this.#units - n * this.rate.unitsPerToken);
  }

  /** Tokens there now (fractional, negative while callers are queued). */
  tokens(now: number): number {
    this.#refill(now);
    return this.#units / this.rate.unitsPerToken;
  }

  /** Full again: forgetting this bucket and making a new (full) one later would change nothing. */
  isFull(now: number): boolean {
    this.#refill(now);
    return this.#units >= this.rate.capacityUnits;
  }

  /** A bucket in the same state, brought up to `now`. */
  copy(now: number): TokenBucket {
    this.#refill(now);
    return new TokenBucket(this.rate, Math.max(now, this.#updatedAt), this.#units);
  }

  #refill(now: number): void {
    const elapsed = now - this.#updatedAt;
    if (elapsed <= 0) return;
    this.#updatedAt = now;
    const missing = this.rate.capacityUnits - this.#units;
    if (missing <= 0) return;
    // Compared before adding: a long idle time times a high rate may exceed 2^53, the missing units never do.
    const gained = elapsed * this.rate.refill;
    this.#units = gained >= missing ? this.rate.capacityUnits : this.#units + gained;
  }
}
