import type { Subscription } from '../message.js';
import type { StoredSession } from '../persistence/persistence.js';
import { OutgoingWindow } from './outgoing-window.js';

/**
 * The server's Session State for one client (MQTT 4.1) while a connection holds it: subscriptions,
 * messages in flight and queued, and QoS 2 messages received but not released. Pure state.
 */
export class Session {
  readonly clientId: string;
  expiryIntervalSeconds: number;
  /** By Topic Filter as subscribed: a session has at most one subscription per filter (MQTT-3.8.4-3). */
  readonly subscriptions = new Map<string, Subscription>();
  readonly outgoing: OutgoingWindow;
  readonly incomingQos2 = new Set<number>();
  /** Whether persistence holds a copy, which ending the session must delete. */
  stored = false;

  constructor(clientId: string, expiryIntervalSeconds: number, maxQueued: number) {
    this.clientId = clientId;
    this.expiryIntervalSeconds = expiryIntervalSeconds;
    this.outgoing = new OutgoingWindow(maxQueued);
  }

  static restore(stored: StoredSession, expiryIntervalSeconds: number, maxQueued: number): Session {
    const session = new Session(stored.clientId, expiryIntervalSeconds, maxQueued);
    for (const subscription of stored.subscriptions) session.subscriptions.set(subscription.filter, subscription);
    session.outgoing.restore(stored.flights);
    for (const packetId of stored.incomingQos2) session.incomingQos2.add(packetId);
    session.stored = true;
    return session;
  }

  snapshot(expiresAt: number | undefined): StoredSession {
    return {
      clientId: this.clientId,
      expiryIntervalSeconds: this.expiryIntervalSeconds,
      expiresAt,
      subscriptions: [...this.subscriptions.values()],
      flights: this.outgoing.flights(),
      incomingQos2: [...this.incomingQos2],
    };
  }
}
