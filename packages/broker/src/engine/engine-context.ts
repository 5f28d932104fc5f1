import type { BrokerLimits } from '../broker-options.js';
import type { ClientRef } from '../hooks/broker-hooks.js';
import type { GuardedHooks } from '../hooks/guarded-hooks.js';
import type { Delivery, Message, Subscription } from '../message.js';
import type { RetainOutcome } from '../persistence/persistence.js';
import type { Session } from '../session/session.js';
import type { BrokerCounters } from './broker-counters.js';

/** Why a connection closed, as far as its session and Will Message are concerned. */
export interface CloseCause {
  /** Whether the Will Message is published: after every close but a DISCONNECT 0x00 (MQTT-3.1.2-8) or a shutdown. */
  readonly publishWill: boolean;
  /** The session was handed to a newer connection for the same client (MQTT-3.1.4-3). */
  readonly takenOver?: boolean;
}

/** A Will Message waiting for its connection to end (MQTT 3.1.2.5). */
export interface Will {
  readonly message: Message;
  /** Seconds from the message's publication to its expiry, if it has a Message Expiry Interval. */
  readonly expirySeconds: number | undefined;
  readonly delaySeconds: number;
}

/** What the engine knows of a connection that holds (or is opening) a session. */
export interface SessionHolder<C> {
  readonly ref: ClientRef<C> | undefined;
  readonly session: Session | undefined;
  readonly will: Will | undefined;
  deliver(delivery: Delivery): void;
  /** Closes this connection for a newer one with the same client id, which takes its session. */
  takeOver(): void;
}

export interface OpenedSession {
  readonly session: Session;
  /** Whether an existing session is resumed: the CONNACK Session Present flag (MQTT-3.2.2-3). */
  readonly present: boolean;
  /** Messages queued for the session while it was offline, oldest first. */
  readonly queued: readonly Delivery[];
}

/** The engine as a connection sees it. */
export interface EngineContext<C> {
  readonly limits: BrokerLimits;
  readonly hooks: GuardedHooks<C>;
  readonly counters: BrokerCounters;
  now(): number;
  /** Settles once the sessions kept by persistence are routable again. */
  readonly ready: Promise<void>;
  isClientIdTaken(clientId: string): boolean;
  /** Takes over, cleans or resumes the client's session and holds it for the connection (MQTT-3.1.4-3, -4). */
  openSession(holder: SessionHolder<C>, clientId: string, cleanStart: boolean, expirySeconds: number): Promise<OpenedSession>;
  /** CONNACK is sent: messages for the session flow to the connection from now on. */
  sessionOnline(holder: SessionHolder<C>): void;
  /** The connection is closed: keep or end its session, and deal with its Will Message. */
  connectionClosed(holder: SessionHolder<C>, cause: CloseCause): void;
  /** Routes a message a client published (its retained copy already stored) to every subscriber, on every node. */
  route(message: Message): void;
  /** Whether a published message reaches every node now: always on a single node. */
  canFanOut(): boolean;
  /** Hands a delivery back for whatever now holds the client's session (its connection closed meanwhile). */
  redirect(clientId: string, delivery: Delivery): void;
  retain(message: Message): Promise<RetainOutcome>;
  retained(pattern: string): Promise<Message[]>;
  subscribe(clientId: string, subscription: Subscription): void;
  unsubscribe(clientId: string, subscription: Subscription): void;
  /** Writes a persistent session's snapshot after its subscriptions changed. */
  saveSession(session: Session): void;
}
