import { BanList, type Ban, type BanReason, type BanResult, type BanTarget } from './ban-list.js';
import { ConnectRateLimiter } from './connect-rate-limiter.js';
import { ConnectionCap } from './connection-cap.js';
import { DeviceLimiter, type PublishVerdict } from './device-limiter.js';
import { FlappingDetector } from './flapping-detector.js';
import { HandshakeRateLimiter, type HandshakeDecision } from './handshake-rate-limiter.js';
import { RefusalAggregator } from './refusal-aggregator.js';
import { THROTTLE_REFUSALS, type ConnectRefusal, type PolicyRefusal, type SubscribeRefusal, type ThrottleRefusal } from './refusal-codes.js';
import { sourceKey } from './source-address.js';
import { sourceSubjectKey, thingKey, toThrottleSummary, type ThrottleSummary } from './throttle-audit.js';
import { DEFAULT_THROTTLE_SETTINGS, type ThrottleSettings } from './throttle-settings.js';

export type ConnectVerdict = 'ok' | ConnectRefusal;
export type SubscribeVerdict = 'ok' | SubscribeRefusal;

export interface ThrottleStats {
  /** Admitted connections on this node, as opened by `allowConnect` and closed by `onDisconnect`. */
  readonly connections: number;
  readonly trackedThings: number;
  readonly trackedSources: number;
  readonly bans: number;
  readonly handshakes: { readonly accepted: number; readonly delayed: number; readonly refused: number };
  /** Refusals since start, by reason (never reset: a counter for metrics). */
  readonly refusals: Readonly<Record<ThrottleRefusal, number>>;
  /** Publish decisions taken on shared overflow buckets because the device table was full of active devices. */
  readonly overflowDecisions: number;
}

/** How the gateway sets an operator ban: until `expiresAt` (epoch ms), or null for until lifted. */
export interface BanRequest {
  readonly expiresAt: number | null;
  readonly by?: string;
  readonly note?: string;
}

const ADDRESS_BANNED: HandshakeDecision = { action: 'refuse', refusal: 'address-banned' };

/**
 * The throttling domain the gateway calls from its hooks, built from one ThrottleSettings. Pure:
 * every method takes the time (`now`, epoch ms) and does no I/O; the gateway acts on the verdict
 * (refusalResponse maps it to what the device sees) and writes the audit summaries `tick` returns.
 *
 * The path of a device: `allowHandshake` on the raw TCP connection (before TLS), `allowConnect` in
 * `admit`, `allowPublish` / `allowSubscribe` in the authorize hooks, `onDisconnect` when an admitted
 * connection closes, `onHandshakeFailed` when TLS fails. State is per node (in memory).
 */
export class Throttle {
  readonly settings: ThrottleSettings;
  readonly #bans: BanList;
  readonly #handshakes: HandshakeRateLimiter;
  readonly #connectRate: ConnectRateLimiter;
  readonly #cap: ConnectionCap;
  readonly #flapping: FlappingDetector;
  readonly #devices: DeviceLimiter;
  readonly #audit: RefusalAggregator<ThrottleRefusal>;
  readonly #refusals = Object.fromEntries(THROTTLE_REFUSALS.map((r) => [r, 0])) as Record<ThrottleRefusal, number>;

  constructor(settings: ThrottleSettings = DEFAULT_THROTTLE_SETTINGS, now = 0) {
    const s = (this.settings = settings);
    this.#bans = new BanList({ maxBans: s.maxBans });
    this.#handshakes = new HandshakeRateLimiter({
      handshakesPerMinutePerSource: s.handshakesPerMinutePerSource, handshakeBurstPerSource: s.handshakeBurstPerSource,
      handshakesPerSecond: s.handshakesPerSecond, handshakeBurst: s.handshakeBurst, maxDelayMs: s.handshakeMaxDelayMs,
      failurePenalty: s.handshakeFailurePenalty, maxTrackedSources: s.maxTrackedSources,
    }, now);
    this.#connectRate = new ConnectRateLimiter({ connectsPerMinute: s.connectsPerMinutePerThing, connectBurst: s.connectBurstPerThing, maxTrackedThings: s.maxTrackedThings }, now);
    this.#cap = new ConnectionCap({ maxConnections: s.maxConnections, maxConnectionsPerThing: s.maxConnectionsPerThing });
    this.#flapping = new FlappingDetector({ maxConnects: s.flappingMaxConnects, windowMs: s.flappingWindowMs, banMs: s.flappingBanMs, maxTrackedThings: s.maxTrackedThings });
    this.#devices = new DeviceLimiter({
      messagesPerSecond: s.messagesPerSecond, messageBurst: s.messageBurst, bytesPerSecond: s.bytesPerSecond, byteBurst: s.byteBurst,
      maxPayloadBytes: s.maxPayloadBytes, disconnectAfterRefusals: s.rateDisconnectAfterRefusals, maxTrackedDevices: s.maxTrackedThings,
    }, now);
    this.#audit = new RefusalAggregator<ThrottleRefusal>({ intervalMs: s.auditIntervalMs, maxKeys: s.maxAuditKeys });
  }

  /** Limits the broker engine enforces itself: pass them to its options. */
  get engineLimits(): { readonly receiveMaximum: number; readonly maxInflightMessages: number } {
    return { receiveMaximum: this.settings.maxInflightMessages, maxInflightMessages: this.settings.maxInflightMessages };
  }

  /**
   * On each raw TCP connection, before any TLS work (`source`: the socket's remoteAddress). 'delay'
   * books a slot: hold the socket `delayMs`, then start TLS without asking again.
   */
  allowHandshake(source: string, now: number): HandshakeDecision {
    const key = sourceKey(source);
    const banned = this.#bans.hasAddressBans && this.#bans.isBanned({ address: source }, now) !== undefined;
    const decision = banned ? ADDRESS_BANNED : this.#handshakes.decide(key, now);
    if (decision.action === 'refuse') this.#refuse(sourceSubjectKey(key), decision.refusal, now);
    return decision;
  }

  /** A handshake from `source` failed (no or a bad client certificate): its source pays a penalty. */
  onHandshakeFailed(source: string, now: number): void {
    this.#handshakes.failed(sourceKey(source), now);
  }

  /**
   * In `admit`, once TLS has authenticated `thing`. Order: bans, connect rate, connection caps,
   * flapping. A refusal the device caused (ban, rate, flapping) also costs its source handshakes;
   * a full node does not, and costs no connect token, so retrying against it is never punished.
   * On 'ok' the connection holds a place until `onDisconnect`.
   */
  allowConnect(thing: string, clientId: string, source: string, now: number): ConnectVerdict {
    const ban = this.#bans.isBanned({ thing, clientId, address: source }, now);
    if (ban !== undefined) return this.#refuseConnect(thing, source, ban.reason === 'flapping' ? 'flapping' : 'banned', now);
    if (this.#connectRate.check(thing, now) !== 'ok') return this.#refuseConnect(thing, source, 'connect-rate', now);
    const capped = this.#cap.open(thing, clientId);
    if (capped !== 'ok') {
      this.#refuse(thingKey(thing), capped, now);
      return capped;
    }
    this.#connectRate.count(thing, now);
    const flapping = this.#flapping.record(thing, now);
    if (!flapping.flapping) return 'ok';
    this.#cap.close(thing, clientId);
    this.#addBan({ kind: 'thing', value: thing }, 'flapping', { expiresAt: flapping.banUntil }, now);
    return this.#refuseConnect(thing, source, 'flapping', now);
  }

  /** An admitted connection (one `allowConnect` said 'ok' to) has closed. */
  onDisconnect(thing: string, clientId: string): void {
    this.#cap.close(thing, clientId);
  }

  /** In `authorizePublish`, for each PUBLISH of `payloadBytes`. O(1), allocation-free when allowed. */
  allowPublish(thing: string, payloadBytes: number, now: number): PublishVerdict {
    const verdict = this.#devices.allowPublish(thing, payloadBytes, now);
    if (verdict !== 'ok') this.#refuse(thingKey(thing), verdict, now);
    return verdict;
  }

  /** In `authorizeSubscribe`, for each new topic filter; `currentCount`: subscriptions the session holds. */
  allowSubscribe(thing: string, currentCount: number, now: number): SubscribeVerdict {
    if (currentCount < this.settings.maxSubscriptionsPerThing) return 'ok';
    this.#refuse(thingKey(thing), 'too-many-subscriptions', now);
    return 'too-many-subscriptions';
  }

  /** An operator ban; the longer ban stands when one exists. Throws a RangeError for a bad address. */
  ban(target: BanTarget, request: BanRequest, now: number): BanResult {
    return this.#addBan(target, 'operator', request, now);
  }

  /** Lifts the ban on exactly this target, flapping or operator; true if there was one. */
  unban(target: BanTarget): boolean {
    return this.#bans.remove(target);
  }

  bans(now: number): Ban[] {
    return this.#bans.list(now);
  }

  /** The ban in force for a connection already admitted: a ban set after it connected closes it. */
  banFor(thing: string, clientId: string, source: string, now: number): Ban | undefined {
    return this.#bans.isBanned({ thing, clientId, address: source }, now);
  }

  /**
   * For the job runner, every few seconds: forgets idle state (memory returns to zero for a quiet
   * fleet) and returns the refusal summaries due for the audit trail.
   */
  tick(now: number): ThrottleSummary[] {
    this.#bans.sweep(now);
    this.#handshakes.sweep(now);
    this.#connectRate.sweep(now);
    this.#flapping.sweep(now);
    this.#devices.sweep(now);
    return this.#audit.drain(now).map(toThrottleSummary);
  }

  /** Every pending summary, due or not: at shutdown, so that no refusal goes unaudited. */
  flush(): ThrottleSummary[] {
    return this.#audit.flush().map(toThrottleSummary);
  }

  stats(): ThrottleStats {
    const handshakes = this.#handshakes.stats();
    const devices = this.#devices.stats();
    return {
      connections: this.#cap.connections,
      trackedThings: Math.max(devices.tracked, this.#connectRate.tracked, this.#flapping.stats().tracked),
      trackedSources: handshakes.trackedSources,
      bans: this.#bans.size,
      handshakes: { accepted: handshakes.accepted, delayed: handshakes.delayed, refused: handshakes.refused },
      refusals: { ...this.#refusals },
      overflowDecisions: devices.overflowDecisions,
    };
  }

  #refuseConnect(thing: string, source: string, refusal: ConnectRefusal, now: number): ConnectVerdict {
    this.#handshakes.failed(sourceKey(source), now);
    this.#refuse(thingKey(thing), refusal, now);
    return refusal;
  }

  #addBan(target: BanTarget, reason: BanReason, request: BanRequest, now: number): BanResult {
    const { by, note } = request;
    return this.#bans.add({ target, reason, createdAt: now, expiresAt: request.expiresAt, ...(by !== undefined && { by }), ...(note !== undefined && { note }) }, now);
  }

  /** A publish or subscription the policies refused: counted per thing and summarized for the audit trail like the throttles' own. */
  denied(thing: string, refusal: PolicyRefusal, now: number): void {
    this.#refuse(thingKey(thing), refusal, now);
  }

  #refuse(key: string, refusal: ThrottleRefusal, now: number): void {
    this.#refusals[refusal]++;
    this.#audit.record(key, refusal, now);
  }
}
