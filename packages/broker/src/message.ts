export type QoS = 0 | 1 | 2;

/** MQTT 5 user properties as mqtt-packet represents them: a repeated name holds an array. */
export type UserProperties = Readonly<Record<string, string | readonly string[]>>;

/**
 * The MQTT 5 properties of an Application Message that the server forwards unaltered
 * (MQTT-3.3.2-4, MQTT-3.3.2-15, MQTT-3.3.2-16, MQTT-3.3.2-17, MQTT-3.3.2-20). Message expiry is
 * held as an absolute time on the message instead, because the interval forwarded shrinks.
 */
export interface MessageProperties {
  readonly payloadFormatIndicator?: boolean;
  readonly contentType?: string;
  readonly responseTopic?: string;
  readonly correlationData?: Buffer;
  readonly userProperties?: UserProperties;
}

/** An Application Message as the broker holds it: immutable once accepted. */
export interface Message {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: MessageProperties | undefined;
  /** When the message expires (epoch ms), from its Message Expiry Interval; undefined: never. */
  readonly expiresAt: number | undefined;
  /** Client id of the publishing connection (for No Local, MQTT-3.8.3-3); undefined for the server's own. */
  readonly publisher: string | undefined;
}

/** One message on its way to one session, at the QoS and RETAIN flag decided for that session. */
export interface Delivery {
  readonly message: Message;
  readonly qos: QoS;
  readonly retain: boolean;
  /** Identifiers of the matching subscriptions that carry one (MQTT-3.3.4-3). */
  readonly subscriptionIds: readonly number[] | undefined;
}

/** A subscription held in a session (MQTT-3.8.3.1 subscription options). */
export interface Subscription {
  /** The Topic Filter as the client sent it; the key of the subscription in its session. */
  readonly filter: string;
  /** What is matched against topic names: the filter without `$share/{group}/`. */
  readonly pattern: string;
  /** The share name of a shared subscription (MQTT-4.8.2), or undefined. */
  readonly shareGroup: string | undefined;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId: number | undefined;
}

/** The message with another payload (a publish hook's rewrite): a copy, so the hook's Buffer can be reused by it. */
export function withPayload(message: Message, payload: Buffer): Message {
  return { ...message, payload: Buffer.from(payload) };
}

/** The remaining Message Expiry Interval in whole seconds (MQTT-3.3.2-6), never below 0. */
export function remainingExpirySeconds(message: Message, now: number): number | undefined {
  if (message.expiresAt === undefined) return undefined;
  return Math.max(0, Math.ceil((message.expiresAt - now) / 1000));
}

export function isExpired(message: Message, now: number): boolean {
  return message.expiresAt !== undefined && message.expiresAt <= now;
}
