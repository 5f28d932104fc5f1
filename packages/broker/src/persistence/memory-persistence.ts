import type { Delivery, Message } from '../message.js';
import { isExpired } from '../message.js';
import { TopicTree } from '../topic/topic-tree.js';
import type { Persistence, QueueStore, RetainedStore, RetainOutcome, SessionStore, StoredSession } from './persistence.js';

/**
 * The embedded default: everything in this process's memory, lost when it stops. Payloads are
 * copied on the way in, so a stored message never pins the larger network buffer it arrived in.
 */
export function createMemoryPersistence(): Persistence {
  return {
    sessions: new MemorySessionStore(),
    queues: new MemoryQueueStore(),
    retained: new MemoryRetainedStore(),
    close: () => Promise.resolve(),
  };
}

class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, StoredSession>();

  get(clientId: string): Promise<StoredSession | undefined> {
    return Promise.resolve(this.#sessions.get(clientId));
  }

  put(session: StoredSession): Promise<void> {
    const flights = session.flights.map((flight) => ({ ...flight, delivery: ownDelivery(flight.delivery) }));
    this.#sessions.set(session.clientId, { ...session, subscriptions: [...session.subscriptions], flights, incomingQos2: [...session.incomingQos2] });
    return Promise.resolve();
  }

  delete(clientId: string): Promise<void> {
    this.#sessions.delete(clientId);
    return Promise.resolve();
  }

  list(): AsyncIterable<StoredSession> {
    const sessions = [...this.#sessions.values()];
    return {
      [Symbol.asyncIterator]: () => {
        let index = 0;
        return {
          next: (): Promise<IteratorResult<StoredSession, undefined>> =>
            Promise.resolve(index < sessions.length ? { value: sessions[index++] as StoredSession, done: false } : { value: undefined, done: true }),
        };
      },
    };
  }
}

class MemoryQueueStore implements QueueStore {
  readonly #queues = new Map<string, Delivery[]>();

  push(clientId: string, delivery: Delivery, limit: number): Promise<number> {
    let queue = this.#queues.get(clientId);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(clientId, queue);
    }
    queue.push(ownDelivery(delivery));
    const dropped = Math.max(0, queue.length - limit);
    if (dropped > 0) queue.splice(0, dropped);
    return Promise.resolve(dropped);
  }

  take(clientId: string): Promise<Delivery[]> {
    const queue = this.#queues.get(clientId) ?? [];
    this.#queues.delete(clientId);
    return Promise.resolve(queue);
  }

  clear(clientId: string): Promise<void> {
    this.#queues.delete(clientId);
    return Promise.resolve();
  }
}

class MemoryRetainedStore implements RetainedStore {
  readonly #messages = new TopicTree<Message>();

  put(message: Message, limit: number): Promise<RetainOutcome> {
    if (message.payload.length === 0) {
      this.#messages.delete(message.topic);
      return Promise.resolve('deleted');
    }
    if (this.#messages.size >= limit && this.#messages.get(message.topic) === undefined) return Promise.resolve('full');
    this.#messages.set(message.topic, ownMessage(message));
    return Promise.resolve('stored');
  }

  match(pattern: string, now: number): Promise<Message[]> {
    const found = this.#messages.match(pattern);
    const live = found.filter((message) => !isExpired(message, now));
    if (live.length !== found.length) for (const message of found) if (isExpired(message, now)) this.#messages.delete(message.topic);
    return Promise.resolve(live);
  }
}

function ownMessage(message: Message): Message {
  return { ...message, payload: Buffer.from(message.payload) };
}

function ownDelivery(delivery: Delivery): Delivery {
  return { ...delivery, message: ownMessage(delivery.message) };
}
