import { BoundedTable } from './bounded-table.js';
import { positiveInteger } from './checks.js';
import type { PublishRefusal } from './refusal-codes.js';
import { BucketRate, TokenBucket } from './token-bucket.js';

export type PublishVerdict = 'ok' | PublishRefusal;

type RateRefusal = 'message-rate' | 'byte-rate';

export interface DeviceLimiterOptions {
  readonly messagesPerSecond: number;
  /** Messages a device may send at once after being quiet: the message bucket's capacity. */
  readonly messageBurst: number;
  readonly bytesPerSecond: number;
  /** Payload bytes a device may send at once after being quiet; at least `maxPayloadBytes`. */
  readonly byteBurst: number;
  readonly maxPayloadBytes: number;
  /** Rate refusals tolerated per REFUSAL_WINDOW_MS; past them a refusal is 'rate-disconnect'. */
  readonly disconnectAfterRefusals: number;
  /** Devices tracked at once; beyond it (all active) new devices share one overflow set of buckets. */
  readonly maxTrackedDevices: number;
}

/** The refusal allowance refills fully over this window: "N refusals within about 10 s". */
export const REFUSAL_WINDOW_MS = 10_000;

interface DeviceBuckets {
  readonly messages: TokenBucket;
  readonly bytes: TokenBucket;
  /** One token per rate refusal: empty means the device keeps publishing after being told no. */
  readonly refusals: TokenBucket;
}

export interface DeviceLimiterStats {
  readonly tracked: number;
  /** Decisions taken on the shared overflow buckets because the table was full of active devices. */
  readonly overflowDecisions: number;
}

/**
 * Per-device message-rate and byte-rate token buckets, keyed by thing name, for the gateway's
 * `authorizePublish` hook. `allowPublish` is O(1) and allocates nothing: one Map lookup and a few
 * additions.
 *
 * Memory is bounded by `maxTrackedDevices`. An entry is forgotten (by `sweep`, or to make room)
 * only once all its buckets are full again, that is after the device was quiet for the longest
 * fill time (byteBurst / bytesPerSecond, messageBurst / messagesPerSecond, and 10 s for the
 * refusal allowance): a new entry starts full, so forgetting earlier would hand a device a fresh
 * burst. If the table is full of active devices, a device not in it is decided on one shared
 * overflow set of buckets, and a device that later gets its own entry starts from the overflow's
 * level, not full: overflow can only be stricter, never a way round the rate.
 */
export class DeviceLimiter {
  readonly #maxPayloadBytes: number;
  readonly #rates: { readonly messages: BucketRate; readonly bytes: BucketRate; readonly refusals: BucketRate };
  readonly #table: BoundedTable<DeviceBuckets>;
  readonly #overflow: DeviceBuckets;
  #overflowDecisions = 0;

  constructor(options: DeviceLimiterOptions, now = 0) {
    this.#maxPayloadBytes = positiveInteger('maxPayloadBytes', options.maxPayloadBytes);
    if (options.byteBurst < options.maxPayloadBytes) {
      throw new RangeError('byteBurst must be at least maxPayloadBytes, or a payload of the largest size could never pass');
    }
    const disconnectAfter = positiveInteger('disconnectAfterRefusals', options.disconnectAfterRefusals);
    this.#rates = {
      messages: BucketRate.perSecond(options.messagesPerSecond, options.messageBurst),
      bytes: BucketRate.perSecond(options.bytesPerSecond, options.byteBurst),
      refusals: new BucketRate(disconnectAfter, disconnectAfter, REFUSAL_WINDOW_MS),
    };
    this.#overflow = this.#fresh(now);
    this.#table = new BoundedTable(options.maxTrackedDevices, {
      create: (_key, at) => this.#copyOverflow(at),
      isIdle: (entry, at) => entry.messages.isFull(at) && entry.bytes.isFull(at) && entry.refusals.isFull(at),
    });
  }

  /**
   * Whether `thing` may publish a message of `payloadBytes` now; takes its tokens if so. A rate
   * refusal past the device's refusal allowance (`disconnectAfterRefusals` within about 10 s) is
   * 'rate-disconnect': the gateway then closes the connection (MQTT 5: DISCONNECT 0x96) instead
   * of refusing message after message.
   */
  allowPublish(thing: string, payloadBytes: number, now: number): PublishVerdict {
    if (payloadBytes > this.#maxPayloadBytes) return 'payload-too-large';
    const device = this.#table.get(thing) ?? this.#admit(thing, now);
    // Both buckets are checked before either is taken from: a refused message costs no tokens.
    if (!device.messages.canTake(1, now)) return this.#refuse(device, 'message-rate', now);
    if (!device.bytes.canTake(payloadBytes, now)) return this.#refuse(device, 'byte-rate', now);
    device.messages.consume(1);
    device.bytes.consume(payloadBytes);
    return 'ok';
  }

  /** Forgets devices whose buckets are full again. Returns how many. */
  sweep(now: number): number {
    return this.#table.sweep(now);
  }

  stats(): DeviceLimiterStats {
    return { tracked: this.#table.size, overflowDecisions: this.#overflowDecisions };
  }

  #admit(thing: string, now: number): DeviceBuckets {
    const created = this.#table.getOrCreate(thing, now);
    if (created !== undefined) return created;
    this.#overflowDecisions++;
    return this.#overflow;
  }

  #refuse(device: DeviceBuckets, verdict: RateRefusal, now: number): PublishVerdict {
    return device.refusals.take(1, now) ? verdict : 'rate-disconnect';
  }

  #fresh(now: number): DeviceBuckets {
    return {
      messages: new TokenBucket(this.#rates.messages, now),
      bytes: new TokenBucket(this.#rates.bytes, now),
      refusals: new TokenBucket(this.#rates.refusals, now),
    };
  }

  #copyOverflow(now: number): DeviceBuckets {
    return { messages: this.#overflow.messages.copy(now), bytes: this.#overflow.bytes.copy(now), refusals: this.#overflow.refusals.copy(now) };
  }
}
