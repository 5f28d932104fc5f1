import { BoundedTable } from './bounded-table.js';
import { nonNegativeInteger, positiveInteger } from './checks.js';
import type { HandshakeRefusal } from './refusal-codes.js';
import { BucketRate, TokenBucket } from './token-bucket.js';

export interface HandshakeRateLimiterOptions {
  readonly handshakesPerMinutePerSource: number;
  /** Handshakes one source may start at once (a generous burst: NAT puts many devices behind one address). */
  readonly handshakeBurstPerSource: number;
  /** Handshakes the whole node starts per second, from all sources: the CPU budget for TLS. */
  readonly handshakesPerSecond: number;
  readonly handshakeBurst: number;
  /** Longest a connection is held before its handshake starts; beyond it the connection is refused. */
  readonly maxDelayMs: number;
  /** Handshakes a failed one (bad certificate, refused CONNECT) costs its source, on top of itself. */
  readonly failurePenalty: number;
  readonly maxTrackedSources: number;
}

export type HandshakeDecision =
  | { readonly action: 'accept' }
  /** Hold the TCP connection, then start TLS after `delayMs`; the slot is booked, do not ask again. */
  | { readonly action: 'delay'; readonly delayMs: number }
  /** Close the TCP connection now, before any TLS work; `refusal` says which budget is spent. */
  | { readonly action: 'refuse'; readonly refusal: HandshakeRefusal };

const ACCEPT: HandshakeDecision = { action: 'accept' };
const REFUSE_SOURCE: HandshakeDecision = { action: 'refuse', refusal: 'handshake-rate' };
const REFUSE_GLOBAL: HandshakeDecision = { action: 'refuse', refusal: 'handshake-budget' };

export interface HandshakeStats {
  readonly trackedSources: number;
  readonly accepted: number;
  readonly delayed: number;
  readonly refused: number;
}

/**
 * TLS handshakes per source address (IPv6 per /64), asked on each raw TCP connection before any
 * TLS work, so that a handshake flood costs us a closed socket, not an ECDHE and a signature.
 *
 * Two token buckets decide: the source's (a generous burst, then a steady rate) and the node's
 * (the TLS CPU budget). A connection over either is not refused at once but booked for the
 * moment both have a token, and held that long (backpressure), up to `maxDelayMs`; only beyond
 * that is it refused, and the device retries. So a reconnect storm of thousands of devices behind
 * one NAT address is admitted at the source rate, in order, without any device being refused for
 * good, while one flooding address gets no more than its rate, and the node never more than its
 * budget. Handshakes that fail, or whose CONNECT is then refused, cost their source
 * `failurePenalty` more: an address full of legitimate devices keeps its rate, an address of
 * failures loses it. Memory is bounded by `maxTrackedSources`, as in `DeviceLimiter`.
 */
export class HandshakeRateLimiter {
  readonly #maxDelayMs: number;
  readonly #failurePenalty: number;
  /** How far a penalty may push a source into debt: a full delay window, so that it always ends. */
  readonly #penaltyFloorTokens: number;
  readonly #global: TokenBucket;
  readonly #sourceOverflow: TokenBucket;
  readonly #sources: BoundedTable<TokenBucket>;
  #accepted = 0;
  #delayed = 0;
  #refused = 0;

  constructor(options: HandshakeRateLimiterOptions, now = 0) {
    this.#maxDelayMs = nonNegativeInteger('maxDelayMs', options.maxDelayMs);
    this.#failurePenalty = nonNegativeInteger('failurePenalty', options.failurePenalty);
    const sourceRate = BucketRate.perMinute(options.handshakesPerMinutePerSource, options.handshakeBurstPerSource);
    this.#penaltyFloorTokens = Math.ceil((this.#maxDelayMs * sourceRate.refill) / sourceRate.perMs);
    this.#global = new TokenBucket(BucketRate.perSecond(options.handshakesPerSecond, options.handshakeBurst), now);
    this.#sourceOverflow = new TokenBucket(sourceRate, now);
    this.#sources = new BoundedTable(positiveInteger('maxTrackedSources', options.maxTrackedSources), {
      create: (_key, at) => this.#sourceOverflow.copy(at),
      isIdle: (bucket, at) => bucket.isFull(at),
    });
  }

  /** Decides on a new TCP connection from `source`: the `sourceKey` of the socket's remoteAddress. */
  decide(source: string, now: number): HandshakeDecision {
    const bucket = this.#source(source, now);
    const sourceWait = bucket.waitMs(1, now);
    if (sourceWait > this.#maxDelayMs) return this.#refuse(REFUSE_SOURCE);
    const globalWait = this.#global.waitMs(1, now);
    if (globalWait > this.#maxDelayMs) return this.#refuse(REFUSE_GLOBAL);
    // Both are booked (their levels may go below zero): the connection starts when both have a token.
    bucket.consume(1);
    this.#global.consume(1);
    const delayMs = Math.max(sourceWait, globalWait);
    if (delayMs === 0) {
      this.#accepted++;
      return ACCEPT;
    }
    this.#delayed++;
    return { action: 'delay', delayMs };
  }

  /**
   * Tells the limiter that a handshake from `source` (a `sourceKey`) failed (no or a bad client certificate), or
   * that its CONNECT was refused (banned, flapping, connect rate): the source pays a penalty.
   */
  failed(source: string, now: number): void {
    if (this.#failurePenalty === 0) return;
    this.#source(source, now).penalize(this.#failurePenalty, now, this.#penaltyFloorTokens);
  }

  sweep(now: number): number {
    return this.#sources.sweep(now);
  }

  stats(): HandshakeStats {
    return { trackedSources: this.#sources.size, accepted: this.#accepted, delayed: this.#delayed, refused: this.#refused };
  }

  #source(source: string, now: number): TokenBucket {
    return this.#sources.getOrCreate(source, now) ?? this.#sourceOverflow;
  }

  #refuse(decision: HandshakeDecision): HandshakeDecision {
    this.#refused++;
    return decision;
  }
}
