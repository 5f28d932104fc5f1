import type { Delivery, Message, Subscription } from '../message.js';
import type { Flight } from '../session/outgoing-window.js';

/**
 * A session as stored while its client is away (MQTT 4.1): everything needed to resume it on any
 * node. The engine holds live sessions itself and writes this snapshot when the connection ends,
 * and when a persistent session's subscriptions change.
 */
export interface StoredSession {
  readonly clientId: string;
  /** Session Expiry Interval in seconds, already capped by the broker's maximum. */
  readonly expiryIntervalSeconds: number;
  /** When the session ends unless a connection resumes it (epoch ms); undefined while connected. */
  readonly expiresAt: number | undefined;
  readonly subscriptions: readonly Subscription[];
  /** QoS 1 and 2 messages sent but not completely acknowledged, in sending order (MQTT-4.4.0-1). */
  readonly flights: readonly Flight[];
  /** Packet Identifiers of QoS 2 messages received whose PUBREL is awaited (MQTT-4.3.3-10). */
  readonly incomingQos2: readonly number[];
}

export interface SessionStore {
  get(clientId: string): Promise<StoredSession | undefined>;
  put(session: StoredSession): Promise<void>;
  delete(clientId: string): Promise<void>;
  /** Every stored session, so a starting node can route to the offline ones again. */
  list(): AsyncIterable<StoredSession>;
}

/** Messages waiting for an offline session (MQTT 4.1: "pending transmission to the Client"). */
export interface QueueStore {
  /** Appends a delivery, dropping the oldest beyond `limit`; resolves to the number dropped. */
  push(clientId: string, delivery: Delivery, limit: number): Promise<number>;
  /** Removes and returns every queued delivery, oldest first. */
  take(clientId: string): Promise<Delivery[]>;
  clear(clientId: string): Promise<void>;
}

export type RetainOutcome = 'stored' | 'deleted' | 'full';

export interface RetainedStore {
  /**
   * Replaces the retained message of the message's topic (MQTT-3.3.1-5); an empty payload deletes
   * it and is never stored (MQTT-3.3.1-6, MQTT-3.3.1-7). A new topic beyond `limit` is refused.
   */
  put(message: Message, limit: number): Promise<RetainOutcome>;
  /** Retained messages whose topic the pattern matches, expired ones (at `now`, epoch ms) left out and deleted. */
  match(pattern: string, now: number): Promise<Message[]>;
}

/**
 * Where the broker keeps what outlives a connection. Every operation is asynchronous so that a
 * shared store (Redis, for several nodes) can implement it; the in-memory one answers at once.
 * Each implementation must pass the conformance suite in test/persistence/persistence-conformance.ts.
 */
export interface Persistence {
  readonly sessions: SessionStore;
  readonly queues: QueueStore;
  readonly retained: RetainedStore;
  close(): Promise<void>;
}
