import type { BrokerLimits } from '../broker-options.js';
import type { LimitEvent } from '../hooks/broker-hooks.js';
import type { Delivery } from '../message.js';
import type { Persistence } from '../persistence/persistence.js';
import type { BrokerCounters } from './broker-counters.js';
import type { KeyedSerializer } from './keyed-serializer.js';

/**
 * Writes to persistence for one client id at a time, in the order they were asked for, behind any
 * session transition of that client: a reconnect always reads what was written before it, and a
 * session handed to another node is complete once its transition has run. Failures are counted.
 */
export class SessionWrites {
  readonly #persistence: Persistence;
  readonly #locks: KeyedSerializer;
  readonly #limits: BrokerLimits;
  readonly #counters: BrokerCounters;
  readonly #limit: (event: LimitEvent) => void;

  constructor(persistence: Persistence, locks: KeyedSerializer, limits: BrokerLimits, counters: BrokerCounters, limit: (event: LimitEvent) => void) {
    this.#persistence = persistence;
    this.#locks = locks;
    this.#limits = limits;
    this.#counters = counters;
    this.#limit = limit;
  }

  run(clientId: string, task: () => Promise<void>): void {
    this.#locks.run(clientId, task).catch(() => this.#counters.persistenceErrors++);
  }

  /** Queues a delivery for an offline session, dropping (and counting) the oldest beyond the limit. */
  enqueue(clientId: string, delivery: Delivery): void {
    this.run(clientId, async () => this.#dropped(clientId, await this.#persistence.queues.push(clientId, delivery, this.#limits.maxQueuedMessages)));
  }

  /** Queues several deliveries in order, in one go (pipelined by a shared store), and waits for them. */
  async enqueueNow(clientId: string, deliveries: readonly Delivery[]): Promise<void> {
    const queues = this.#persistence.queues;
    const dropped = await Promise.all(deliveries.map((delivery) => queues.push(clientId, delivery, this.#limits.maxQueuedMessages)));
    this.#dropped(clientId, dropped.reduce((sum, count) => sum + count, 0));
  }

  /** Forgets a session's stored copy and its queue. */
  discard(clientId: string): void {
    this.run(clientId, () => this.discardNow(clientId));
  }

  async discardNow(clientId: string): Promise<void> {
    await Promise.all([this.#persistence.sessions.delete(clientId), this.#persistence.queues.clear(clientId)]);
  }

  #dropped(clientId: string, count: number): void {
    for (let index = 0; index < count; index++) this.#limit({ limit: 'maxQueuedMessages', clientId, connection: undefined });
  }
}
