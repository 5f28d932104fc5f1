import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Broker, BrokerStats, DisconnectReasonCode } from '../broker.js';
import { limitNames, resolveLimits, type BrokerLimits, type BrokerOptions } from '../broker-options.js';
import { Connection } from '../connection/connection.js';
import type { BrokerHooks, ClientRef, ConnectionInfo } from '../hooks/broker-hooks.js';
import { GuardedHooks } from '../hooks/guarded-hooks.js';
import type { Delivery, Message, Subscription } from '../message.js';
import { createMemoryPersistence } from '../persistence/memory-persistence.js';
import type { Persistence, RetainOutcome, StoredSession } from '../persistence/persistence.js';
import type { Session } from '../session/session.js';
import { SubscriptionIndex } from '../topic/subscription-index.js';
import { BrokerCounters } from './broker-counters.js';
import { ClusterSessions } from './cluster-sessions.js';
import { DeadlineQueue } from './deadline-queue.js';
import type { CloseCause, EngineContext, OpenedSession, SessionHolder } from './engine-context.js';
import type { EngineSessions } from './engine-sessions.js';
import { HeldSessions } from './held-sessions.js';
import { KeyedSerializer } from './keyed-serializer.js';
import { Router } from './router.js';
import { SessionRegistry } from './session-registry.js';
import { SessionWrites } from './session-writes.js';
import { WillSchedule } from './will-schedule.js';

const DEFAULT_SWEEP_INTERVAL_MS = 1000;
const RESTORE_BATCH = 500;

/** Server DISCONNECT reason codes (MQTT 5 table 3-10 less the client-only ones). */
const disconnectReasonCodes: ReadonlySet<number> = new Set([
  0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c,
  0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
]);

/**
 * The engine: connections, sessions by client id, the subscription index, routing, Will Messages
 * and the timers that sweep them; with a cluster transport, one node of several. Security is never
 * decided here, only asked of the hooks.
 */
export class MqttBroker<C> implements Broker<C>, EngineContext<C> {
  readonly limits: BrokerLimits;
  readonly hooks: GuardedHooks<C>;
  readonly counters = new BrokerCounters();
  readonly ready: Promise<void>;
  readonly now: () => number;
  readonly #persistence: Persistence;
  readonly #ownsPersistence: boolean;
  readonly #index = new SubscriptionIndex<Subscription>();
  readonly #registry = new SessionRegistry<SessionHolder<C>>();
  readonly #router: Router;
  readonly #connections = new Set<Connection<C>>();
  readonly #locks = new KeyedSerializer();
  readonly #writes: SessionWrites;
  readonly #wills: WillSchedule<C>;
  readonly #sessionsDue = new DeadlineQueue();
  readonly #held: HeldSessions<C>;
  /** Undefined on a single node: then nothing of the cluster is on any path. */
  readonly #cluster: ClusterSessions<C> | undefined;
  readonly #timer: NodeJS.Timeout;
  #closed: Promise<void> | undefined;

  constructor(options: BrokerOptions, hooks: BrokerHooks<C>) {
    this.hooks = new GuardedHooks(hooks, this.counters);
    this.limits = resolveLimits(options.limits);
    this.now = options.now ?? Date.now;
    this.#ownsPersistence = options.persistence === undefined;
    this.#persistence = options.persistence ?? createMemoryPersistence();
    this.#router = new Router(this.#index, (clientId) => this.#registry.get(clientId)?.state === 'online', (clientId, delivery) => this.redirect(clientId, delivery));
    this.#writes = new SessionWrites(this.#persistence, this.#locks, this.limits, this.counters, (event) => this.hooks.limit(event));
    this.#wills = new WillSchedule(this);
    const sessions = this.#engineSessions();
    this.#held = new HeldSessions(sessions);
    this.#cluster = options.cluster === undefined ? undefined : new ClusterSessions(options.cluster, sessions);
    this.#timer = setInterval(() => this.#sweep(), options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    this.#timer.unref();
    this.ready = this.#start();
  }

  // --- Broker ----------------------------------------------------------------------------------

  handle(stream: Duplex, connection: ConnectionInfo): void {
    if (this.#closed !== undefined) {
      stream.destroy();
      return;
    }
    if (this.#connections.size >= this.limits.maxConnections) {
      this.hooks.limit({ limit: 'maxConnections', clientId: undefined, connection });
      stream.destroy();
      return;
    }
    // Nagle's algorithm would hold small packets back for an acknowledgement: latency for nothing.
    if (stream instanceof Socket) stream.setNoDelay(true);
    this.counters.connectionsAccepted++;
    const client: Connection<C> = new Connection(this, stream, connection, () => this.#connections.delete(client));
    this.#connections.add(client);
  }

  disconnect(predicate: (client: ClientRef<C>) => boolean, reasonCode: DisconnectReasonCode): number {
    if (!disconnectReasonCodes.has(reasonCode)) throw new RangeError(`0x${reasonCode.toString(16)} is not a server DISCONNECT reason code`);
    let closed = 0;
    for (const connection of [...this.#connections]) {
      if (!connection.connected || !predicate(connection.ref)) continue;
      connection.closeWith(reasonCode);
      closed++;
    }
    return closed;
  }

  stats(): BrokerStats {
    const counters = this.counters;
    const limits = Object.fromEntries(limitNames.map((name) => [name, counters.limits[name] ?? 0]));
    return {
      connections: this.#connections.size,
      clients: this.#registry.onlineCount,
      offlineSessions: this.#registry.offlineCount,
      subscriptions: this.#index.size,
      connectionsAccepted: counters.connectionsAccepted,
      messagesReceived: counters.messagesReceived,
      messagesDelivered: counters.messagesDelivered,
      messagesExpired: counters.messagesExpired,
      limits: limits as BrokerStats['limits'],
      denied: { ...counters.denied },
      protocolErrors: counters.protocolErrors,
      keepAliveTimeouts: counters.keepAliveTimeouts,
      hookErrors: { ...counters.hookErrors },
      persistenceErrors: counters.persistenceErrors,
      clusterErrors: counters.clusterErrors,
    };
  }

  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#timer);
    for (const connection of [...this.#connections]) connection.shutdown();
    await this.ready;
    await this.#locks.idle();
    // Last: until now, this node still hands its sessions over to nodes that claim them.
    if (this.#cluster !== undefined) await this.#cluster.leave().catch(() => this.counters.clusterErrors++);
    if (this.#ownsPersistence) await this.#persistence.close();
  }

  // --- Sessions --------------------------------------------------------------------------------

  isClientIdTaken(clientId: string): boolean {
    return this.#registry.has(clientId);
  }

  async openSession(holder: SessionHolder<C>, clientId: string, cleanStart: boolean, expirySeconds: number): Promise<OpenedSession> {
    await this.ready;
    return this.#locks.run(clientId, () => {
      // A session held elsewhere in the cluster is claimed from its owner.
      if (this.#cluster !== undefined && !this.#registry.has(clientId)) return this.#cluster.open(holder, clientId, cleanStart, expirySeconds);
      return this.#held.open(holder, clientId, cleanStart, expirySeconds);
    });
  }

  sessionOnline(holder: SessionHolder<C>): void {
    const clientId = (holder.ref as ClientRef<C>).clientId;
    for (const delivery of this.#registry.accept(clientId, holder)) holder.deliver(delivery);
    if (this.#cluster !== undefined && holder.session !== undefined) this.#cluster.cameOnline(holder.session.subscriptions.values());
  }

  connectionClosed(holder: SessionHolder<C>, cause: CloseCause): void {
    const ref = holder.ref;
    const session = holder.session;
    if (ref === undefined || session === undefined) return;
    const clientId = ref.clientId;
    const continues = cause.takenOver === true || session.expiryIntervalSeconds > 0;
    if (cause.publishWill && holder.will !== undefined) this.#wills.schedule(ref, holder.will, continues ? session.expiryIntervalSeconds : 0);
    // A session taken over lives on with the newer connection.
    if (cause.takenOver === true || !this.#registry.holds(clientId, holder)) return;
    if (session.expiryIntervalSeconds === 0) {
      this.#registry.end(clientId);
      this.#discard(clientId, [...session.subscriptions.values()], session.stored);
      this.#cluster?.ended(clientId);
      return;
    }
    // MQTT-3.1.2-23: the session state is kept after the connection closes, until it expires.
    const expiryMs = session.expiryIntervalSeconds * 1000;
    const expiresAt = this.now() + expiryMs;
    this.#registry.keep(clientId, [...session.subscriptions.values()]);
    this.#sessionsDue.set(clientId, expiresAt);
    const snapshot = session.snapshot(expiresAt);
    this.#writes.run(clientId, () => this.#persistence.sessions.put(snapshot));
    // Queued deliveries go to persistence now, ahead of anything routed to the session from here on.
    for (const delivery of session.outgoing.takeQueue()) this.#writes.enqueue(clientId, delivery);
    this.#cluster?.wentOffline(clientId, session.subscriptions.values(), expiryMs);
  }

  saveSession(session: Session): void {
    session.stored = true;
    const snapshot = session.snapshot(undefined);
    this.#writes.run(session.clientId, () => this.#persistence.sessions.put(snapshot));
  }

  // --- Messages --------------------------------------------------------------------------------

  route(message: Message): void {
    if (this.#cluster === undefined) this.#router.route(message);
    else this.#cluster.publish(message);
  }

  publish(message: Message): void {
    if (!message.retain) return this.route(message);
    // Counted by publishFromServer; nobody waits for this one.
    this.publishFromServer(message).catch(() => undefined);
  }

  async publishFromServer(message: Message): Promise<void> {
    // MQTT-3.3.1-5..-7 apply to the server's own messages too: replace, or delete with an empty payload.
    let outcome: RetainOutcome | undefined;
    try {
      if (message.retain) outcome = await this.retain(message);
    } catch (error) {
      this.counters.persistenceErrors++;
      throw error;
    }
    if (outcome === 'full') {
      this.hooks.limit({ limit: 'maxRetainedMessages', clientId: undefined, connection: undefined });
      throw new Error(`retained message limit reached: ${message.topic} not retained`);
    }
    this.route(message);
  }

  canFanOut(): boolean {
    return this.#cluster === undefined || this.#cluster.connected;
  }

  redirect(clientId: string, delivery: Delivery): void {
    const slot = this.#registry.get(clientId);
    if (slot === undefined) {
      this.#cluster?.redirected(clientId, delivery);
      return;
    }
    switch (slot.state) {
      case 'online':
        slot.holder.deliver(delivery);
        return;
      case 'opening':
        return this.#hold(clientId, slot.held, delivery);
      case 'offline': {
        // QoS 0 messages are not queued for an offline session (MQTT 4.1 makes it optional).
        if (delivery.qos === 0) return;
        const resuming = this.#held.resuming(clientId);
        if (resuming === undefined) this.#writes.enqueue(clientId, delivery);
        else this.#hold(clientId, resuming, delivery);
        return;
      }
    }
  }

  /** Holds a delivery for a session being opened, dropping (and counting) the oldest beyond the queue limit. */
  #hold(clientId: string, held: Delivery[], delivery: Delivery): void {
    held.push(delivery);
    if (held.length <= this.limits.maxQueuedMessages) return;
    held.shift();
    this.hooks.limit({ limit: 'maxQueuedMessages', clientId, connection: undefined });
  }

  retain(message: Message): Promise<RetainOutcome> {
    return this.#persistence.retained.put(message, this.limits.maxRetainedMessages);
  }

  retained(pattern: string): Promise<Message[]> {
    return this.#persistence.retained.match(pattern, this.now());
  }

  subscribe(clientId: string, subscription: Subscription): void {
    this.#index.add(subscription.pattern, clientId, subscription, subscription.shareGroup);
    if (subscription.shareGroup !== undefined) this.#cluster?.shareMembersChanged(subscription.pattern, subscription.shareGroup);
  }

  unsubscribe(clientId: string, subscription: Subscription): void {
    this.#index.remove(subscription.pattern, clientId, subscription.shareGroup);
    if (subscription.shareGroup !== undefined) this.#cluster?.shareMembersChanged(subscription.pattern, subscription.shareGroup);
  }

  // --- Timers and persistence ------------------------------------------------------------------

  #sweep(): void {
    const now = this.now();
    for (const connection of this.#connections) connection.tick(now);
    this.#wills.sweep(now);
    for (const clientId of this.#sessionsDue.takeDue(now)) this.#expire(clientId);
  }

  /** MQTT-4.1.0-2: the session state is discarded once its expiry interval has passed. */
  #expire(clientId: string): void {
    const slot = this.#registry.get(clientId);
    if (slot?.state !== 'offline') return;
    this.#registry.end(clientId);
    this.#discard(clientId, slot.subscriptions, true);
    this.#cluster?.ended(clientId);
    this.#wills.send(clientId);
  }

  /** Forgets a session's routes, and its stored copy and queue if it had any. */
  #discard(clientId: string, subscriptions: readonly Subscription[], stored: boolean): void {
    for (const subscription of subscriptions) this.unsubscribe(clientId, subscription);
    if (stored) this.#writes.discard(clientId);
  }

  async #start(): Promise<void> {
    if (this.#cluster !== undefined) {
      try {
        await this.#cluster.join();
      } catch {
        this.counters.clusterErrors++;
      }
    }
    await this.#restore();
  }

  /** Routes to the sessions persistence kept (in a cluster: those no live node owns), so they receive messages before their clients return. */
  async #restore(): Promise<void> {
    try {
      let batch: StoredSession[] = [];
      for await (const stored of this.#persistence.sessions.list()) {
        batch.push(stored);
        if (batch.length < RESTORE_BATCH) continue;
        await this.#restoreBatch(batch);
        batch = [];
      }
      await this.#restoreBatch(batch);
    } catch {
      this.counters.persistenceErrors++;
    }
  }

  async #restoreBatch(batch: readonly StoredSession[]): Promise<void> {
    const owned = this.#cluster === undefined || batch.length === 0 ? batch : await this.#cluster.owned(batch);
    const now = this.now();
    for (const stored of owned) this.#installOffline(stored, now);
  }

  #installOffline(stored: StoredSession, now: number): void {
    const clientId = stored.clientId;
    if (this.#registry.has(clientId)) return;
    const expiresAt = stored.expiresAt ?? now + stored.expiryIntervalSeconds * 1000;
    if (expiresAt <= now) {
      this.#writes.discard(clientId);
      this.#cluster?.ended(clientId);
      return;
    }
    for (const subscription of stored.subscriptions) this.subscribe(clientId, subscription);
    this.#registry.restore(clientId, stored.subscriptions);
    this.#sessionsDue.set(clientId, expiresAt);
    this.#cluster?.wentOffline(clientId, [], expiresAt - now);
  }

  /** The session state the paths that open and move sessions work on. */
  #engineSessions(): EngineSessions<C> {
    return {
      limits: this.limits,
      counters: this.counters,
      persistence: this.#persistence,
      registry: this.#registry,
      index: this.#index,
      router: this.#router,
      locks: this.#locks,
      writes: this.#writes,
      wills: this.#wills,
      sessionsDue: this.#sessionsDue,
      now: () => this.now(),
      limit: (event) => this.hooks.limit(event),
      subscribe: (clientId, subscription) => this.subscribe(clientId, subscription),
      unsubscribe: (clientId, subscription) => this.unsubscribe(clientId, subscription),
      discard: (clientId, subscriptions, stored) => this.#discard(clientId, subscriptions, stored),
      installOffline: (stored, now) => this.#installOffline(stored, now),
    };
  }
}
