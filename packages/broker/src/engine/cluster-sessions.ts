import type { BrokerLimits } from '../broker-options.js';
import { ClusterCoordinator, type ClusterHost } from '../cluster/cluster-coordinator.js';
import type { Claim, ClusterTransport } from '../cluster/cluster-transport.js';
import type { PendingClaim } from '../cluster/pending-claim.js';
import type { LimitEvent } from '../hooks/broker-hooks.js';
import type { Delivery, Message, Subscription } from '../message.js';
import type { StoredSession } from '../persistence/persistence.js';
import { Session } from '../session/session.js';
import type { SubscriptionIndex } from '../topic/subscription-index.js';
import type { BrokerCounters } from './broker-counters.js';
import type { OpenedSession, SessionHolder } from './engine-context.js';
import type { EngineSessions } from './engine-sessions.js';
import type { Router } from './router.js';
import { SessionSupersededError, SessionUnavailableError } from './session-errors.js';

const ADOPT_BATCH = 500;

interface Detached {
  readonly live: Session | undefined;
  readonly held: readonly Delivery[];
}

/**
 * The engine's sessions when it is one node of a cluster: opening a session claims it from the
 * node that owned it, a claim from another node hands ours over, and sessions of departed nodes
 * are adopted. The protocol itself is the coordinator's; this is what it does to the sessions.
 */
export class ClusterSessions<C> implements ClusterHost {
  readonly #state: EngineSessions<C>;
  readonly #transport: ClusterTransport;
  readonly #coordinator: ClusterCoordinator;
  /** Deliveries handed back by a closing connection while its session is being handed over. */
  readonly #handovers = new Map<string, Delivery[]>();
  /** Sessions being adopted: a claim for one of them meanwhile means another node has it now. */
  readonly #adopting = new Set<string>();
  readonly #claimedAway = new Set<string>();

  constructor(transport: ClusterTransport, state: EngineSessions<C>) {
    this.#state = state;
    this.#transport = transport;
    this.#coordinator = new ClusterCoordinator(transport, this);
  }

  get limits(): BrokerLimits {
    return this.#state.limits;
  }

  get counters(): BrokerCounters {
    return this.#state.counters;
  }

  get index(): SubscriptionIndex<Subscription> {
    return this.#state.index;
  }

  get router(): Router {
    return this.#state.router;
  }

  now(): number {
    return this.#state.now();
  }

  isOnline(clientId: string): boolean {
    return this.#state.registry.get(clientId)?.state === 'online';
  }

  limit(event: LimitEvent): void {
    this.#state.limit(event);
  }

  join(): Promise<void> {
    return this.#coordinator.join();
  }

  get connected(): boolean {
    return this.#transport.connected;
  }

  leave(): Promise<void> {
    return this.#coordinator.leave();
  }

  publish(message: Message): void {
    this.#coordinator.publish(message);
  }

  // --- Opening a session this node does not hold -----------------------------------------------

  /** Claims the session (waiting for its previous owner to hand it over), then resumes or starts it here. */
  async open(holder: SessionHolder<C>, clientId: string, cleanStart: boolean, expirySeconds: number): Promise<OpenedSession> {
    const state = this.#state;
    let pending: PendingClaim;
    try {
      pending = await this.#coordinator.claim(clientId, cleanStart);
    } catch (error) {
      state.counters.clusterErrors++;
      throw new SessionUnavailableError('the cluster is unavailable', { cause: error });
    }
    const { stored, queued } = await this.#read(pending);
    if (pending.superseded !== undefined) {
      await this.#coordinator.passOn(pending, stored?.subscriptions ?? [], queued);
      throw new SessionSupersededError(`session ${clientId} was taken over by node ${pending.superseded.claim.claimer}`);
    }
    // Synchronous from here: the session is routable before anything else is heard from the bus.
    const maxQueued = state.limits.maxQueuedMessages;
    const held = this.#coordinator.settle(pending, stored?.subscriptions ?? []);
    const session = stored === undefined ? new Session(clientId, expirySeconds, maxQueued) : Session.restore(stored, expirySeconds, maxQueued);
    for (const subscription of session.subscriptions.values()) state.subscribe(clientId, subscription);
    state.registry.open(clientId, holder, session, held);
    return { session, present: stored !== undefined, queued };
  }

  /** What persistence holds for a claimed session (MQTT-3.1.2-4: nothing on Clean Start). */
  async #read(pending: PendingClaim): Promise<{ stored: StoredSession | undefined; queued: Delivery[] }> {
    const { clientId, cleanStart } = pending;
    const state = this.#state;
    try {
      if (cleanStart) {
        // A departed owner (or an earlier failure of ours) may have left a session behind; a live one deleted its own.
        if (pending.result?.previous !== undefined && !pending.result.handover) await state.writes.discardNow(clientId);
        return { stored: undefined, queued: [] };
      }
      const stored = await state.persistence.sessions.get(clientId);
      if (stored === undefined) return { stored, queued: [] };
      // MQTT-4.1.0-2: expired, even if Redis has not forgotten it yet.
      if (stored.expiresAt !== undefined && stored.expiresAt <= state.now()) {
        await state.writes.discardNow(clientId);
        return { stored: undefined, queued: [] };
      }
      return { stored, queued: await state.persistence.queues.take(clientId) };
    } catch (error) {
      this.#coordinator.abandon(pending);
      state.counters.persistenceErrors++;
      throw new SessionUnavailableError('the session store is unavailable', { cause: error });
    }
  }

  // --- Handing a session to another node -------------------------------------------------------

  surrender(claim: Claim): Promise<void> {
    const detached = this.#detach(claim.clientId);
    if (detached === undefined) {
      if (this.#adopting.has(claim.clientId)) this.#claimedAway.add(claim.clientId);
      return Promise.resolve();
    }
    const redirected: Delivery[] = [];
    this.#handovers.set(claim.clientId, redirected);
    // Behind any write of this session still in progress, so the claimer reads the last one.
    return this.#state.locks.run(claim.clientId, async () => {
      this.#handovers.delete(claim.clientId);
      await this.#handOver(claim, detached.live, [...detached.held, ...redirected]);
    });
  }

  /** A delivery a closed connection gave back while its session is being handed over goes with it. */
  redirected(clientId: string, delivery: Delivery): void {
    if (delivery.qos > 0) this.#handovers.get(clientId)?.push(delivery);
  }

  async #handOver(claim: Claim, live: Session | undefined, pending: readonly Delivery[]): Promise<void> {
    const { clientId } = claim;
    const state = this.#state;
    if (claim.cleanStart || (live !== undefined && live.expiryIntervalSeconds === 0)) {
      // The session ends here (MQTT-3.1.2-4): its delayed Will Message goes now (MQTT-3.1.3-9).
      state.wills.send(clientId);
      if (live === undefined || live.stored) await state.writes.discardNow(clientId);
      return;
    }
    // The session is resumed on the claimer: its delayed Will Message is not sent (MQTT-3.1.3-9).
    state.wills.cancel(clientId);
    // An offline session's state is in persistence already.
    if (live === undefined) return;
    await state.persistence.sessions.put(live.snapshot(state.now() + live.expiryIntervalSeconds * 1000));
    await state.writes.enqueueNow(clientId, [...live.outgoing.takeQueue(), ...pending.filter((delivery) => delivery.qos > 0)]);
  }

  /**
   * Takes the session off this node at once: its connection is closed (MQTT 5: DISCONNECT 0x8E
   * Session taken over, MQTT-3.1.4-3), its routes removed, its timers stopped.
   */
  #detach(clientId: string): Detached | undefined {
    const state = this.#state;
    const slot = state.registry.get(clientId);
    if (slot === undefined) return undefined;
    let subscriptions: readonly Subscription[];
    let detached: Detached;
    if (slot.state === 'offline') {
      subscriptions = slot.subscriptions;
      state.sessionsDue.delete(clientId);
      detached = { live: undefined, held: [] };
    } else {
      subscriptions = [...slot.session.subscriptions.values()];
      slot.holder.takeOver();
      detached = { live: slot.session, held: slot.state === 'opening' ? slot.held : [] };
    }
    state.registry.end(clientId);
    for (const subscription of subscriptions) state.unsubscribe(clientId, subscription);
    return detached;
  }

  // --- Ownership ---------------------------------------------------------------------------------

  /** The session ended here. */
  ended(clientId: string): void {
    this.#state.locks.run(clientId, () => this.#coordinator.ended(clientId)).catch(() => this.counters.clusterErrors++);
  }

  /** The session is kept offline here, until `ttlMs` from now at most. */
  wentOffline(clientId: string, subscriptions: Iterable<Subscription>, ttlMs: number): void {
    this.#coordinator.presenceChanged(subscriptions);
    this.#state.locks.run(clientId, () => this.#coordinator.offline(clientId, ttlMs)).catch(() => this.counters.clusterErrors++);
  }

  cameOnline(subscriptions: Iterable<Subscription>): void {
    this.#coordinator.presenceChanged(subscriptions);
  }

  shareMembersChanged(pattern: string, group: string): void {
    this.#coordinator.shareMembersChanged(pattern, group);
  }

  /** The stored sessions among these that this node now owns (none owned them, or their owner departed). */
  async owned(stored: readonly StoredSession[]): Promise<StoredSession[]> {
    const clientIds = stored.map((session) => session.clientId);
    const taken = new Set(await this.#whileAdopting(clientIds, () => this.#coordinator.adopt(clientIds)));
    return stored.filter((session) => !this.#claimedAway.delete(session.clientId) && taken.has(session.clientId));
  }

  async adopt(clientIds: readonly string[]): Promise<void> {
    for (let start = 0; start < clientIds.length; start += ADOPT_BATCH) {
      await Promise.all(clientIds.slice(start, start + ADOPT_BATCH).map((clientId) => this.#adoptOne(clientId)));
    }
  }

  async #adoptOne(clientId: string): Promise<void> {
    const state = this.#state;
    await state.locks.run(clientId, async () => {
      if (state.registry.has(clientId)) return;
      const stored = await this.#whileAdopting([clientId], () => state.persistence.sessions.get(clientId));
      if (this.#claimedAway.delete(clientId)) return;
      if (stored === undefined) await this.#coordinator.ended(clientId);
      else state.installOffline(stored, state.now());
    });
  }

  /** Runs a step of an adoption, noting the sessions claimed by another node meanwhile. */
  async #whileAdopting<T>(clientIds: readonly string[], step: () => Promise<T>): Promise<T> {
    for (const clientId of clientIds) this.#adopting.add(clientId);
    try {
      return await step();
    } finally {
      for (const clientId of clientIds) this.#adopting.delete(clientId);
    }
  }


  heldClientIds(): string[] {
    return this.#state.registry.clientIds();
  }

  forget(clientId: string): void {
    if (this.#detach(clientId) !== undefined) this.#state.wills.cancel(clientId);
  }

  enqueue(clientId: string, deliveries: readonly Delivery[]): Promise<void> {
    return this.#state.writes.enqueueNow(clientId, deliveries);
  }

  discardStored(clientId: string): Promise<void> {
    return this.#state.writes.discardNow(clientId);
  }
}
