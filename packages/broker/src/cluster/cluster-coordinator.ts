import type { BrokerLimits } from '../broker-options.js';
import type { BrokerCounters } from '../engine/broker-counters.js';
import type { Router } from '../engine/router.js';
import type { LimitEvent } from '../hooks/broker-hooks.js';
import type { Delivery, Message, Subscription } from '../message.js';
import type { SubscriptionIndex } from '../topic/subscription-index.js';
import type { Claim, ClusterListener, ClusterTransport, Release, RemotePublish, SharedChoice, ShareUpdate } from './cluster-transport.js';
import { PendingClaim } from './pending-claim.js';
import { SharedNodes } from './shared-nodes.js';

const NO_CHOICES: readonly SharedChoice[] = Object.freeze([]);

/** What the coordinator uses of the engine. */
export interface ClusterHost {
  readonly limits: BrokerLimits;
  readonly counters: BrokerCounters;
  /** This node's subscriptions: plain ones of the sessions it owns, and its members of shared ones. */
  readonly index: SubscriptionIndex<Subscription>;
  readonly router: Router;
  now(): number;
  isOnline(clientId: string): boolean;
  limit(event: LimitEvent): void;
  /**
   * Detaches the client's session from this node at once (its connection taken over, its routes
   * gone), then resolves once its state is in persistence for the claimer.
   */
  surrender(claim: Claim): Promise<void>;
  /** Routes to stored sessions this node took ownership of, as offline sessions. */
  adopt(clientIds: readonly string[]): Promise<void>;
  /** Client ids of the sessions this node holds. */
  heldClientIds(): string[];
  /** Drops a session another node owns by now, without writing it. */
  forget(clientId: string): void;
  enqueue(clientId: string, deliveries: readonly Delivery[]): Promise<void>;
  discardStored(clientId: string): Promise<void>;
}

/**
 * This node's part in a cluster. Every message published here is routed here at once (plain
 * subscriptions, and shared groups whose chosen node is this one) and appended to the bus; every
 * message heard from the bus is routed to this node's own sessions. A session is owned by one
 * node: claims and releases on the bus move it, and the claim's place on the bus is where its
 * messages change hands, so each is delivered once.
 */
export class ClusterCoordinator implements ClusterListener {
  readonly #transport: ClusterTransport;
  readonly #host: ClusterHost;
  readonly #node: string;
  readonly #shares = new SharedNodes();
  /** This node's own share entries as last announced, by `group NUL pattern`. */
  readonly #ownShares = new Map<string, ShareUpdate>();
  readonly #claims = new Map<string, PendingClaim>();
  #seq = 0;
  #tokens = 0;

  constructor(transport: ClusterTransport, host: ClusterHost) {
    this.#transport = transport;
    this.#host = host;
    this.#node = transport.nodeId;
  }

  async join(): Promise<void> {
    this.#shares.beginSnapshot();
    await this.#transport.join(this, () => this.#host.now());
    await this.#loadShares();
  }

  leave(): Promise<void> {
    return this.#transport.leave();
  }

  // --- Messages --------------------------------------------------------------------------------

  publish(message: Message): void {
    const router = this.#host.router;
    router.routeSubscribers(message);
    let shared = NO_CHOICES;
    this.#shares.match(message.topic, (group) => {
      // MQTT 4.8.2: one node per message, preferring one with a connected member; it picks the member.
      const chosen = group.pick((_node, online) => online);
      if (chosen === undefined) return;
      if (chosen.clientId === this.#node) router.routeGroup(message, group.pattern, group.name);
      else (shared === NO_CHOICES ? (shared = []) : (shared as SharedChoice[])).push({ node: chosen.clientId, pattern: group.pattern, group: group.name });
    });
    const seq = ++this.#seq;
    if (this.#claims.size > 0) for (const claim of this.#claims.values()) claim.recordOwn(this.#node, seq, message);
    this.#transport.publish(seq, message, shared);
  }

  published({ node, seq, message, shared }: RemotePublish): void {
    const router = this.#host.router;
    router.routeSubscribers(message);
    for (const choice of shared) if (choice.node === this.#node) router.routeGroup(message, choice.pattern, choice.group);
    if (this.#claims.size > 0) for (const claim of this.#claims.values()) claim.recordOther(node, seq, message);
  }

  // --- Claiming a session from another node ----------------------------------------------------

  /** Takes ownership of the session, and waits for the previous owner to hand it over if there is one. */
  async claim(clientId: string, cleanStart: boolean): Promise<PendingClaim> {
    const limit = (): void => this.#host.limit({ limit: 'maxHandoverMessages', clientId, connection: undefined });
    const pending = new PendingClaim(clientId, cleanStart, `${this.#node}/${++this.#tokens}`, this.#host.limits.maxHandoverMessages, limit);
    // Recording starts before the claim is sent: our messages after it are ours to deliver.
    this.#claims.set(clientId, pending);
    try {
      pending.result = await this.#transport.ownership.claim(clientId, cleanStart, pending.token);
      if (pending.result.handover && !(await pending.waitForRelease(this.#transport.handoverTimeoutMs))) this.#host.counters.clusterErrors++;
      return pending;
    } catch (error) {
      this.#claims.delete(clientId);
      throw error;
    }
  }

  /** The session is being installed here, synchronously after this call: what was recorded for it. */
  settle(pending: PendingClaim, subscriptions: readonly Subscription[]): Delivery[] {
    this.#claims.delete(pending.clientId);
    return pending.deliveries(subscriptions);
  }

  /** The session could not be opened after all: give ownership up rather than hold it without routing. */
  abandon(pending: PendingClaim): void {
    this.#claims.delete(pending.clientId);
    this.#transport.ownership.disown(pending.clientId).catch((error: unknown) => this.failed(error));
  }

  /**
   * A later claim took the session before we had it: pass on what the session is owed (its queue,
   * which we took, then what we recorded) and release it to that claimer.
   */
  async passOn(pending: PendingClaim, subscriptions: readonly Subscription[], queued: readonly Delivery[]): Promise<void> {
    this.#claims.delete(pending.clientId);
    const { claim, lastSeq } = pending.superseded as NonNullable<PendingClaim['superseded']>;
    try {
      if (claim.cleanStart) await this.#host.discardStored(claim.clientId);
      else await this.#host.enqueue(claim.clientId, [...queued, ...pending.deliveries(subscriptions)]);
    } finally {
      await this.#release(claim, lastSeq);
    }
  }

  // --- The bus ---------------------------------------------------------------------------------

  claimed(claim: Claim): void {
    if (claim.claimer === this.#node) {
      const pending = this.#claims.get(claim.clientId);
      if (pending?.token === claim.token) pending.heard();
      return;
    }
    if (claim.owner !== this.#node) return;
    // The cut: every message this node published so far, it delivered to the session itself.
    const lastSeq = this.#seq;
    const pending = this.#claims.get(claim.clientId);
    if (pending !== undefined) return pending.supersede(claim, lastSeq);
    this.#host.surrender(claim).then(
      () => this.#release(claim, lastSeq),
      (error: unknown) => {
        this.failed(error);
        return this.#release(claim, lastSeq);
      },
    );
  }

  released(release: Release): void {
    if (release.claimer === this.#node) this.#claims.get(release.clientId)?.released(release);
  }

  shareChanged(update: ShareUpdate): void {
    this.#shares.update(update);
  }

  nodeLeft(node: string): void {
    this.#shares.removeNode(node);
    for (const pending of this.#claims.values()) if (pending.result?.previous === node) pending.ownerGone();
    void this.#adoptFrom(node);
  }

  resync(): void {
    void this.#resync();
  }

  failed(_error: unknown): void {
    this.#host.counters.clusterErrors++;
  }

  // --- Shared subscriptions --------------------------------------------------------------------

  /** This node's membership of a shared group changed (a member came, went, connected or left). */
  shareMembersChanged(pattern: string, group: string): void {
    const local = this.#host.index.group(pattern, group);
    const online = local === undefined ? undefined : local.some((clientId) => this.#host.isOnline(clientId));
    const key = `${group}\u0000${pattern}`;
    if (this.#ownShares.get(key)?.online === online) return;
    const update: ShareUpdate = { node: this.#node, pattern, group, online };
    if (online === undefined) this.#ownShares.delete(key);
    else this.#ownShares.set(key, update);
    this.#shares.set(update);
    this.#transport.shares.set(pattern, group, online).catch((error: unknown) => this.failed(error));
  }

  /** A session connected or went away: its shared groups may have gained or lost their connected member. */
  presenceChanged(subscriptions: Iterable<Subscription>): void {
    for (const subscription of subscriptions) if (subscription.shareGroup !== undefined) this.shareMembersChanged(subscription.pattern, subscription.shareGroup);
  }

  // --- Ownership of sessions while they are here -----------------------------------------------

  /** The session ended here: nobody owns it any more. */
  ended(clientId: string): Promise<void> {
    return this.#transport.ownership.disown(clientId);
  }

  /** The session is offline here until it expires, `ttlMs` from now. */
  offline(clientId: string, ttlMs: number): Promise<void> {
    return this.#transport.ownership.lease(clientId, ttlMs);
  }

  /** Takes the stored sessions among these that no live node owns. */
  adopt(clientIds: readonly string[]): Promise<string[]> {
    return this.#transport.ownership.adopt(clientIds);
  }

  // --- Internals -------------------------------------------------------------------------------

  async #release(claim: Claim, lastSeq: number): Promise<void> {
    try {
      await this.#transport.ownership.release({ clientId: claim.clientId, owner: this.#node, claimer: claim.claimer, token: claim.token, lastSeq });
    } catch (error) {
      // The claimer goes on after its handover timeout.
      this.failed(error);
    }
  }

  async #loadShares(): Promise<void> {
    this.#shares.beginSnapshot();
    try {
      this.#shares.endSnapshot(await this.#transport.shares.snapshot(), this.#node);
    } catch (error) {
      this.#shares.abortSnapshot();
      this.failed(error);
    }
  }

  async #adoptFrom(node: string): Promise<void> {
    try {
      const taken = await this.#transport.ownership.adoptFrom(node);
      if (taken.length > 0) await this.#host.adopt(taken);
    } catch (error) {
      this.failed(error);
    }
  }

  /** Events may have been missed: read the shares again, say ours again, and keep only the sessions still ours. */
  async #resync(): Promise<void> {
    try {
      await this.#loadShares();
      await Promise.all([...this.#ownShares.values()].map((update) => this.#transport.shares.set(update.pattern, update.group, update.online)));
      const held = this.#host.heldClientIds();
      const kept = new Set(await this.#transport.ownership.adopt(held));
      for (const clientId of held) if (!kept.has(clientId)) this.#host.forget(clientId);
    } catch (error) {
      this.failed(error);
    }
  }
}
