import type { ClientRef } from '../hooks/broker-hooks.js';
import type { GuardedHooks } from '../hooks/guarded-hooks.js';
import { withPayload, type Message } from '../message.js';
import type { RetainOutcome } from '../persistence/persistence.js';
import type { BrokerCounters } from './broker-counters.js';
import { DeadlineQueue } from './deadline-queue.js';
import type { Will } from './engine-context.js';

interface PendingWill<C> {
  readonly ref: ClientRef<C>;
  readonly will: Will;
}

/** What publishing a Will Message takes from the engine. */
export interface WillPublisher<C> {
  readonly hooks: GuardedHooks<C>;
  readonly counters: BrokerCounters;
  now(): number;
  retain(message: Message): Promise<RetainOutcome>;
  route(message: Message): void;
}

/** Will Messages waiting for their delay, by client id (MQTT 3.1.2.5, MQTT-3.1.3-9). */
export class WillSchedule<C> {
  readonly #engine: WillPublisher<C>;
  readonly #wills = new Map<string, PendingWill<C>>();
  readonly #due = new DeadlineQueue();

  constructor(engine: WillPublisher<C>) {
    this.#engine = engine;
  }

  /** MQTT-3.1.2-8: published after the Will Delay Interval or when the session ends, whichever is first. */
  schedule(ref: ClientRef<C>, will: Will, sessionExpirySeconds: number): void {
    const delaySeconds = Math.min(will.delaySeconds, sessionExpirySeconds);
    if (delaySeconds === 0) {
      void this.#publish({ ref, will });
      return;
    }
    this.#wills.set(ref.clientId, { ref, will });
    this.#due.set(ref.clientId, this.#engine.now() + delaySeconds * 1000);
  }

  /** The session is resumed: its delayed Will Message is not sent. */
  cancel(clientId: string): void {
    this.#wills.delete(clientId);
    this.#due.delete(clientId);
  }

  /** The session ended: its delayed Will Message goes now. */
  send(clientId: string): void {
    const pending = this.#wills.get(clientId);
    this.cancel(clientId);
    if (pending !== undefined) void this.#publish(pending);
  }

  sweep(now: number): void {
    for (const clientId of this.#due.takeDue(now)) this.send(clientId);
  }

  async #publish({ ref, will }: PendingWill<C>): Promise<void> {
    const engine = this.#engine;
    const expiresAt = will.expirySeconds === undefined ? undefined : engine.now() + will.expirySeconds * 1000;
    let message: Message = { ...will.message, expiresAt };
    const decided = await engine.hooks.authorizePublish(ref, message);
    if (decided !== true) {
      if (!('payload' in decided)) {
        engine.counters.denied.publish++;
        return;
      }
      message = withPayload(message, decided.payload);
    }
    // MQTT-3.1.2-14, -15 (3.1.1 MQTT-3.1.2-16, -17): retained as the Will Retain flag says.
    if (message.retain) {
      try {
        if ((await engine.retain(message)) === 'full') return engine.hooks.limit({ limit: 'maxRetainedMessages', clientId: ref.clientId, connection: ref.connection });
      } catch {
        engine.counters.persistenceErrors++;
        return;
      }
    }
    engine.route(message);
  }
}
