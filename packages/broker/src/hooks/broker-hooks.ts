import type { X509Certificate } from 'node:crypto';
import type { LimitName } from '../broker-options.js';
import type { Message, QoS, Subscription, UserProperties } from '../message.js';

export type Awaitable<T> = T | Promise<T>;

/** Where a connection comes from, as the code that accepted it knows: the broker never looks itself. */
export interface ConnectionInfo {
  /** How the client reached us: `tcp`, `tls`, `websocket`... */
  readonly transport: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The client certificate the TLS layer verified, when there is one. */
  readonly peerCertificate?: X509Certificate;
}

export interface WillRequest {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly delaySeconds: number;
}

/** A CONNECT, as `admit` sees it. */
export interface ConnectRequest {
  readonly protocolVersion: 4 | 5;
  /** The client identifier as sent: empty when the client asked to be assigned one. */
  readonly clientId: string;
  /** The identifier the server assigned (MQTT-3.1.3-6), when the client sent an empty one. */
  readonly assignedClientId: string | undefined;
  readonly cleanStart: boolean;
  readonly keepAliveSeconds: number;
  /** The Session Expiry Interval asked for, in seconds (3.1.1: 0 for a clean session, else the maximum). */
  readonly sessionExpirySeconds: number;
  readonly username: string | undefined;
  readonly password: Buffer | undefined;
  readonly will: WillRequest | undefined;
  readonly userProperties: UserProperties | undefined;
  /** The completed enhanced authentication (MQTT 4.12), when the client asked for one. */
  readonly authentication: { readonly method: string; readonly state: unknown } | undefined;
}

/** CONNACK reason codes `admit` may refuse with (MQTT 5 table 3-1); 3.1.1 clients get the nearest return code. */
export type ConnectRefusalCode = 0x80 | 0x83 | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | 0x8a | 0x8c | 0x97 | 0x9c | 0x9d | 0x9f;

export type Admission<C> =
  | {
      readonly admit: true;
      /** Opaque per-connection context handed to every later hook for this client. */
      readonly context: C;
      /** Sent as Response Information when the client asked for it (MQTT-3.1.2-28 forbids it otherwise). */
      readonly responseInformation?: string;
    }
  | { readonly admit: false; readonly reasonCode: ConnectRefusalCode; readonly reasonString?: string };

/** The client a hook is asked about: one object per connection, built when it is admitted. */
export interface ClientRef<C> {
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  readonly username: string | undefined;
  readonly context: C;
  readonly connection: ConnectionInfo;
}

/** PUBACK/PUBREC reason codes a refused publish may carry (MQTT 5 table 3-4). */
export type PublishRefusalCode = 0x80 | 0x83 | 0x87 | 0x90 | 0x97 | 0x99;
/** SUBACK reason codes a refused subscription may carry (MQTT 5 table 3-8). */
export type SubscribeRefusalCode = 0x80 | 0x83 | 0x87 | 0x8f | 0x97 | 0x9e | 0xa1 | 0xa2;

/** Only `true` allows. `false` refuses with 0x87 Not authorized; a refusal object says why. */
export type Verdict<R extends number> = boolean | { readonly reasonCode: R; readonly reasonString?: string };

/**
 * Allows a publish with another payload (data minimization at ingest, say): that payload is what
 * every subscriber receives and what is retained, instead of the one the client sent. Topic, QoS,
 * RETAIN and properties stay as published, so the new payload must still agree with a Payload
 * Format Indicator or Content Type the client set. An empty payload on a retained message deletes
 * the retained message, as any empty retained payload does (MQTT-3.3.1-6).
 */
export interface PayloadRewrite {
  readonly payload: Buffer;
}

/**
 * What `authorizePublish` answers: a Verdict, or a PayloadRewrite that allows with another payload.
 * An object carrying a `reasonCode` refuses, whatever else it carries.
 */
export type PublishVerdict = Verdict<PublishRefusalCode> | PayloadRewrite;

export interface AuthenticationRequest {
  readonly method: string;
  readonly data: Buffer | undefined;
  /** `connect` for the CONNECT, `re-authenticate` for an AUTH 0x19, `continue` for each AUTH 0x18 after either. */
  readonly phase: 'connect' | 're-authenticate' | 'continue';
  /** What the previous step of this exchange returned as its state. */
  readonly state: unknown;
  readonly connect: ConnectRequest;
  readonly connection: ConnectionInfo;
}

export type AuthenticationStep =
  | { readonly outcome: 'continue'; readonly data?: Buffer; readonly state?: unknown }
  | { readonly outcome: 'success'; readonly data?: Buffer; readonly state?: unknown }
  | { readonly outcome: 'failure'; readonly reasonCode?: 0x80 | 0x86 | 0x87 | 0x8c; readonly reasonString?: string };

export interface LimitEvent {
  readonly limit: LimitName;
  /** The client concerned, once its CONNECT is known. */
  readonly clientId: string | undefined;
  readonly connection: ConnectionInfo | undefined;
}

/**
 * The decisions the broker never takes itself. Every one is mandatory, and a hook that throws or
 * rejects denies (and is reported to `onError`).
 */
export interface SecurityHooks<C> {
  /** Decides on each CONNECT, after any enhanced authentication; may attach a context. */
  admit(connect: ConnectRequest, connection: ConnectionInfo): Awaitable<Admission<C>>;
  /**
   * Decides on each PUBLISH from a client, and on each Will Message when it is published. May
   * allow it with another payload (`{ payload }`, see PayloadRewrite).
   */
  authorizePublish(client: ClientRef<C>, message: Message): Awaitable<PublishVerdict>;
  /** Decides on each Topic Filter of a SUBSCRIBE. */
  authorizeSubscribe(client: ClientRef<C>, subscription: Subscription): Awaitable<Verdict<SubscribeRefusalCode>>;
  /** Decides on each message for each subscriber, so policy changes apply to live subscriptions. */
  authorizeDelivery(client: ClientRef<C>, message: Message): Awaitable<boolean>;
}

/** Enhanced authentication (MQTT 4.12); without it a CONNECT naming a method is refused with 0x8C. */
export interface AuthenticationHook {
  authenticate(request: AuthenticationRequest): Awaitable<AuthenticationStep>;
}

export interface ObserverHooks {
  /** Told each time a limit refuses something, for counting. Must not throw. */
  onLimit(event: LimitEvent): void;
  /** Told when a hook threw or rejected (and so denied). Must not throw. */
  onError(error: unknown, hook: HookName): void;
}

export type BrokerHooks<C> = SecurityHooks<C> & Partial<AuthenticationHook> & Partial<ObserverHooks>;

export type HookName = keyof SecurityHooks<unknown> | keyof AuthenticationHook;

export const securityHookNames: readonly (keyof SecurityHooks<unknown>)[] = ['admit', 'authorizePublish', 'authorizeSubscribe', 'authorizeDelivery'];
