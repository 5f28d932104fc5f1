import type { Duplex } from 'node:stream';
import type { LimitName } from './broker-options.js';
import type { ClientRef, ConnectionInfo, HookName } from './hooks/broker-hooks.js';
import type { Message } from './message.js';

/** Server DISCONNECT reason codes `disconnect()` may send (MQTT 5 table 3-10, server side). */
export type DisconnectReasonCode =
  | 0x00 | 0x80 | 0x81 | 0x82 | 0x83 | 0x87 | 0x89 | 0x8b | 0x8d | 0x8e | 0x8f | 0x90 | 0x93 | 0x94
  | 0x95 | 0x96 | 0x97 | 0x98 | 0x99 | 0x9a | 0x9b | 0x9c | 0x9d | 0x9e | 0x9f | 0xa0 | 0xa1 | 0xa2;

export type Decision = 'connect' | 'authentication' | 'publish' | 'subscribe' | 'delivery';

export interface BrokerStats {
  /** Streams being handled, whether or not their CONNECT is through. */
  readonly connections: number;
  /** Clients past their CONNACK. */
  readonly clients: number;
  /** Sessions kept for clients that are away. */
  readonly offlineSessions: number;
  /** Subscriptions held, online and offline. */
  readonly subscriptions: number;
  readonly connectionsAccepted: number;
  /** PUBLISH packets accepted from clients (duplicates of QoS 2 ones not counted again). */
  readonly messagesReceived: number;
  /** PUBLISH packets sent to clients. */
  readonly messagesDelivered: number;
  /** Messages whose Message Expiry Interval ran out before they could be sent (MQTT-3.3.2-5). */
  readonly messagesExpired: number;
  /** Refusals, by the limit that refused. */
  readonly limits: Readonly<Record<LimitName, number>>;
  /** Refusals by a security hook, by decision. */
  readonly denied: Readonly<Record<Decision, number>>;
  /** Connections closed for a malformed packet or a protocol error. */
  readonly protocolErrors: number;
  readonly keepAliveTimeouts: number;
  /** Hooks that threw or rejected (each one denied). */
  readonly hookErrors: Readonly<Record<HookName, number>>;
  /** Persistence operations that failed. */
  readonly persistenceErrors: number;
  /** Cluster operations that failed (bus, ownership, shares), and session handovers that timed out. */
  readonly clusterErrors: number;
}

export interface Broker<C = unknown> {
  /** Serves one client over any duplex stream (TCP, TLS, WebSocket...). */
  handle(stream: Duplex, connection: ConnectionInfo): void;
  /**
   * Closes every live connection matching the predicate: MQTT 5 clients get a DISCONNECT with the
   * reason code first. Their wills are published as after any server-side close. Returns the number
   * of connections closed.
   *
   * In a cluster this reaches this node's connections only: the predicate closes over this node's
   * connection contexts and cannot travel. Revocation must therefore be decided on every node (the
   * gateway's registry watch runs on each).
   */
  disconnect(predicate: (client: ClientRef<C>) => boolean, reasonCode: DisconnectReasonCode): number;
  /**
   * Publishes a message of the server's own (no publishing client): routed like any other, to every
   * matching subscription, each delivery still asked of `authorizeDelivery`; retained if flagged
   * (resolves once stored; rejects when the retained store is full or fails). In a cluster it
   * reaches every node's subscribers; while this node is cut off from Redis, only its own (the
   * failed hand-off is counted in `clusterErrors`).
   */
  publishFromServer(message: Message): Promise<void>;
  /**
   * `publishFromServer` without waiting: a retained message that cannot be stored is not
   * published, and counted (`limits.maxRetainedMessages` or `persistenceErrors`).
   */
  publish(message: Message): void;
  stats(): BrokerStats;
  /** Disconnects every client (MQTT 5: 0x8B Server shutting down), saves their sessions and stops. */
  close(): Promise<void>;
}
