import type { BrokerLimits } from '../broker-options.js';
import type { LimitEvent } from '../hooks/broker-hooks.js';
import type { Subscription } from '../message.js';
import type { Persistence, StoredSession } from '../persistence/persistence.js';
import type { SubscriptionIndex } from '../topic/subscription-index.js';
import type { BrokerCounters } from './broker-counters.js';
import type { DeadlineQueue } from './deadline-queue.js';
import type { SessionHolder } from './engine-context.js';
import type { KeyedSerializer } from './keyed-serializer.js';
import type { Router } from './router.js';
import type { SessionRegistry } from './session-registry.js';
import type { SessionWrites } from './session-writes.js';
import type { WillSchedule } from './will-schedule.js';

/** The engine's session state, as the paths that open and move sessions use it. */
export interface EngineSessions<C> {
  readonly limits: BrokerLimits;
  readonly counters: BrokerCounters;
  readonly persistence: Persistence;
  readonly registry: SessionRegistry<SessionHolder<C>>;
  readonly index: SubscriptionIndex<Subscription>;
  readonly router: Router;
  readonly locks: KeyedSerializer;
  readonly writes: SessionWrites;
  readonly wills: WillSchedule<C>;
  readonly sessionsDue: DeadlineQueue;
  now(): number;
  limit(event: LimitEvent): void;
  subscribe(clientId: string, subscription: Subscription): void;
  unsubscribe(clientId: string, subscription: Subscription): void;
  /** Forgets a session's routes, and its stored copy and queue if it had any. */
  discard(clientId: string, subscriptions: readonly Subscription[], stored: boolean): void;
  /** Routes to a stored session as an offline one (or discards it if it has expired). */
  installOffline(stored: StoredSession, now: number): void;
}
