import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Broker, BrokerStats, DisconnectReasonCode } from '../broker.js';
import { limitNames, resolveLimits, type BrokerLimits, type BrokerOptions } from '../broker-options.js';
import { Connection } from '../connection/connection.js';
import type { BrokerHooks, ClientRef, ConnectionInfo } from '../hooks/broker-hooks.js';
import { GuardedHooks } from '../hooks/guarded-hooks.js';
import type { Delivery, Message, Subscription } from '../message.js';
import { createMemoryPersistence } from '../persistence/memory-persistence.js';
import type { Persistence, RetainOutcome } from '../persistence/persistence.js';
import { Session } from '../session/session.js';
import { SubscriptionIndex } from '../topic/subscription-index.js';
import { BrokerCounters } from './broker-counters.js';
import { DeadlineQueue } from './deadline-queue.js';
import type { CloseCause, EngineContext, OpenedSession, SessionHolder, Will } from './engine-context.js';
import { KeyedSerializer } from './keyed-serializer.js';
import { Router } from './router.js';
import { SessionRegistry } from './session-registry.js';

const DEFAULT_SWEEP_INTERVAL_MS = 1000;

/** Server DISCONNECT reason codes (MQTT 5 table 3-10 less the client-only ones). */
const disconnectReasonCodes: ReadonlySet<number> = new Set([
  0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c,
  0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
]);

interface PendingWill<C> {
  readonly ref: ClientRef<C>;
  readonly will: Will;
}

/**
 * The engine: connections, sessions by client id, the subscription index, routing, Will Messages
 * and the timers that sweep them. Security is never decided here, only asked of the hooks.
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
  readonly #wills = new Map<string, PendingWill<C>>();
  readonly #willsDue = new DeadlineQueue();
  readonly #sessionsDue = new DeadlineQueue();
  readonly #timer: NodeJS.Timeout;
  #closed: Promise<void> | undefined;

  constructor(options: BrokerOptions, hooks: BrokerHooks<C>) {
    this.hooks = new GuardedHooks(hooks, this.counters);
    this.limits = resolveLimits(options.limits);
    this.now = options.now ?? Date.now;
    this.#ownsPersistence = options.persistence === undefined;
    this.#persistence = options.persistence ?? createMemoryPersistence();
    this.#router = new Router(this.#index, (clientId) => this.#registry.get(clientId)?.state === 'online', (clientId, delivery) => this.redirect(clientId, delivery));
    this.#timer = setInterval(() => this.#sweep(), options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    this.#timer.unref();
    this.ready = this.#restore();
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
    if (this.#ownsPersistence) await this.#persistence.close();
  }

  // --- Sessions --------------------------------------------------------------------------------

  isClientIdTaken(clientId: string): boolean {
    return this.#registry.has(clientId);
  }

  async openSession(holder: SessionHolder<C>, clientId: string, cleanStart: boolean, expirySeconds: number): Promise<OpenedSession> {
    await this.ready;
    return this.#locks.run(clientId, async () => {
      const slot = this.#registry.get(clientId);
      let session: Session | undefined;
      let queued: Delivery[] = [];
      let held: Delivery[] = [];
      if (slot !== undefined && slot.state !== 'offline') {
        if (slot.state === 'opening') held = slot.held;
        // MQTT-3.1.4-3: the existing connection is closed and its live session handed over.
        slot.holder.takeOver();
        const handed = slot.session;
        if (!cleanStart && handed.expiryIntervalSeconds > 0) session = handed;
        else this.#discard(clientId, [...handed.subscriptions.values()], handed.stored);
      } else if (slot?.state === 'offline') {
        this.#sessionsDue.delete(clientId);
        const stored = cleanStart ? undefined : await this.#persistence.sessions.get(clientId);
        if (stored === undefined) this.#discard(clientId, slot.subscriptions, true);
        else {
          queued = await this.#persistence.queues.take(clientId);
          session = Session.restore(stored, expirySeconds, this.limits.maxQueuedMessages);
        }
      }
      // MQTT-3.1.2-4: Clean Start discards the session; MQTT-3.1.2-5, -6: else resume it or make one.
      const present = session !== undefined;
      session ??= new Session(clientId, expirySeconds, this.limits.maxQueuedMessages);
      session.expiryIntervalSeconds = expirySeconds;
      this.#registry.open(clientId, holder, session, held);
      // MQTT-3.1.3-9: a resumed session cancels its delayed Will Message; an ended one sends it now.
      if (present) this.#cancelWill(clientId);
      else this.#sendWill(clientId);
      return { session, present, queued };
    });
  }

  sessionOnline(holder: SessionHolder<C>): void {
    const clientId = (holder.ref as ClientRef<C>).clientId;
    for (const delivery of this.#registry.accept(clientId, holder)) holder.deliver(delivery);
  }

  connectionClosed(holder: SessionHolder<C>, cause: CloseCause): void {
    const ref = holder.ref;
    const session = holder.session;
    if (ref === undefined || session === undefined) return;
    const clientId = ref.clientId;
    const continues = cause.takenOver === true || session.expiryIntervalSeconds > 0;
    if (cause.publishWill && holder.will !== undefined) this.#scheduleWill(ref, holder.will, continues ? session.expiryIntervalSeconds : 0);
    // A session taken over lives on with the newer connection.
    if (cause.takenOver === true || !this.#registry.holds(clientId, holder)) return;
    if (session.expiryIntervalSeconds === 0) {
      this.#registry.end(clientId);
      this.#discard(clientId, [...session.subscriptions.values()], session.stored);
      return;
    }
    // MQTT-3.1.2-23: the session state is kept after the connection closes, until it expires.
    const expiresAt = this.now() + session.expiryIntervalSeconds * 1000;
    this.#registry.keep(clientId, [...session.subscriptions.values()]);
    this.#sessionsDue.set(clientId, expiresAt);
    const snapshot = session.snapshot(expiresAt);
    // Queued deliveries go to persistence now, ahead of anything routed to the session from here on.
    for (const delivery of session.outgoing.takeQueue()) this.#enqueue(clientId, delivery);
    this.#persist(clientId, () => this.#persistence.sessions.put(snapshot));
  }

  saveSession(session: Session): void {
    session.stored = true;
    const snapshot = session.snapshot(undefined);
    this.#persist(session.clientId, () => this.#persistence.sessions.put(snapshot));
  }

  // --- Messages --------------------------------------------------------------------------------

  publish(message: Message): void {
    this.#router.route(message);
  }

  redirect(clientId: string, delivery: Delivery): void {
    const slot = this.#registry.get(clientId);
    if (slot === undefined) return;
    switch (slot.state) {
      case 'online':
        slot.holder.deliver(delivery);
        return;
      case 'opening':
        slot.held.push(delivery);
        if (slot.held.length > this.limits.maxQueuedMessages) {
          slot.held.shift();
          this.hooks.limit({ limit: 'maxQueuedMessages', clientId, connection: undefined });
        }
        return;
      case 'offline':
        // QoS 0 messages are not queued for an offline session (MQTT 4.1 makes it optional).
        if (delivery.qos > 0) this.#enqueue(clientId, delivery);
        return;
    }
  }

  retain(message: Message): Promise<RetainOutcome> {
    return this.#persistence.retained.put(message, this.limits.maxRetainedMessages);
  }

  retained(pattern: string): Promise<Message[]> {
    return this.#persistence.retained.match(pattern, this.now());
  }

  subscribe(clientId: string, subscription: Subscription): void {
    this.#index.add(subscription.pattern, clientId, subscription, subscription.shareGroup);
  }

  unsubscribe(clientId: string, subscription: Subscription): void {
    this.#index.remove(subscription.pattern, clientId, subscription.shareGroup);
  }

  // --- Will Messages ---------------------------------------------------------------------------

  /** MQTT-3.1.2-8: published after the Will Delay Interval or when the session ends, whichever is first. */
  #scheduleWill(ref: ClientRef<C>, will: Will, sessionExpirySeconds: number): void {
    const delaySeconds = Math.min(will.delaySeconds, sessionExpirySeconds);
    if (delaySeconds === 0) {
      void this.#publishWill({ ref, will });
      return;
    }
    this.#wills.set(ref.clientId, { ref, will });
    this.#willsDue.set(ref.clientId, this.now() + delaySeconds * 1000);
  }

  #cancelWill(clientId: string): void {
    this.#wills.delete(clientId);
    this.#willsDue.delete(clientId);
  }

  #sendWill(clientId: string): void {
    const pending = this.#wills.get(clientId);
    this.#cancelWill(clientId);
    if (pending !== undefined) void this.#publishWill(pending);
  }

  async #publishWill({ ref, will }: PendingWill<C>): Promise<void> {
    const expiresAt = will.expirySeconds === undefined ? undefined : this.now() + will.expirySeconds * 1000;
    const message: Message = { ...will.message, expiresAt };
    const decided = await this.hooks.authorizePublish(ref, message);
    if (decided !== true) {
      this.counters.denied.publish++;
      return;
    }
    // MQTT-3.1.2-14, -15 (3.1.1 MQTT-3.1.2-16, -17): retained as the Will Retain flag says.
    if (message.retain) {
      try {
        if ((await this.retain(message)) === 'full') return this.hooks.limit({ limit: 'maxRetainedMessages', clientId: ref.clientId, connection: ref.connection });
      } catch {
        this.counters.persistenceErrors++;
        return;
      }
    }
    this.publish(message);
  }

  // --- Timers and persistence ------------------------------------------------------------------

  #sweep(): void {
    const now = this.now();
    for (const connection of this.#connections) connection.tick(now);
    for (const clientId of this.#willsDue.takeDue(now)) this.#sendWill(clientId);
    for (const clientId of this.#sessionsDue.takeDue(now)) this.#expire(clientId);
  }

  /** MQTT-4.1.0-2: the session state is discarded once its expiry interval has passed. */
  #expire(clientId: string): void {
    const slot = this.#registry.get(clientId);
    if (slot?.state !== 'offline') return;
    this.#registry.end(clientId);
    this.#discard(clientId, slot.subscriptions, true);
    this.#sendWill(clientId);
  }

  /** Forgets a session's routes, and its stored copy and queue if it had any. */
  #discard(clientId: string, subscriptions: readonly Subscription[], stored: boolean): void {
    for (const subscription of subscriptions) this.unsubscribe(clientId, subscription);
    if (stored) {
      this.#persist(clientId, async () => {
        await this.#persistence.sessions.delete(clientId);
        await this.#persistence.queues.clear(clientId);
      });
    }
  }

  #enqueue(clientId: string, delivery: Delivery): void {
    this.#persistence.queues.push(clientId, delivery, this.limits.maxQueuedMessages).then(
      (dropped) => {
        for (let index = 0; index < dropped; index++) this.hooks.limit({ limit: 'maxQueuedMessages', clientId, connection: undefined });
      },
      () => this.counters.persistenceErrors++,
    );
  }

  #persist(clientId: string, task: () => Promise<void>): void {
    this.#locks.run(clientId, task).catch(() => this.counters.persistenceErrors++);
  }

  /** Routes to the sessions persistence kept, so they receive messages before their clients return. */
  async #restore(): Promise<void> {
    try {
      const now = this.now();
      for await (const stored of this.#persistence.sessions.list()) {
        const expiresAt = stored.expiresAt ?? now + stored.expiryIntervalSeconds * 1000;
        if (this.#registry.has(stored.clientId)) continue;
        if (expiresAt <= now) {
          this.#discard(stored.clientId, [], true);
          continue;
        }
        for (const subscription of stored.subscriptions) this.subscribe(stored.clientId, subscription);
        this.#registry.restore(stored.clientId, stored.subscriptions);
        this.#sessionsDue.set(stored.clientId, expiresAt);
      }
    } catch {
      this.counters.persistenceErrors++;
    }
  }
}
