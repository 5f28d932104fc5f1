import { ReasonCode } from '@fleetward/protocol';
import type { ISubscribePacket, ISubscription, IUnsubscribePacket } from 'mqtt-packet';
import type { QoS, Subscription } from '../message.js';
import { isTopicProblem, parseTopicFilter } from '../topic/topic-filter.js';
import type { ClientChannel } from './client-channel.js';

interface Outcome {
  /** The SUBACK reason code for this filter (MQTT-3.8.4-6, MQTT-3.8.4-7). */
  readonly code: number;
  /** The subscription made, when retained messages are to be sent for it. */
  readonly sendRetained?: Subscription;
}

/**
 * A SUBSCRIBE: each filter in turn as if it came alone (MQTT-3.8.4-5), one SUBACK with a code per
 * filter in order (MQTT-3.9.3-1), then the retained messages the subscriptions ask for.
 */
export async function handleSubscribe<C>(channel: ClientChannel<C>, packet: ISubscribePacket): Promise<void> {
  // MQTT-3.8.3-2 (3.1.1 MQTT-3.8.3-3): at least one Topic Filter; 3.1.1 MQTT-2.3.1-1: a non-zero packet id.
  if (packet.subscriptions.length === 0 || packet.messageId === 0) return channel.protocolError(ReasonCode.ProtocolError);
  const codes: number[] = [];
  const retained: Subscription[] = [];
  for (const requested of packet.subscriptions) {
    const outcome = await subscribeOne(channel, requested, packet.properties?.subscriptionIdentifier);
    if (outcome === undefined || channel.closed) return;
    codes.push(outcome.code);
    if (outcome.sendRetained !== undefined) retained.push(outcome.sendRetained);
  }
  const failed = codes.some((code) => code >= 0x80);
  const properties = failed ? { reasonString: channel.reasonString('one or more subscriptions were refused') } : undefined;
  // MQTT-3.8.4-1, MQTT-3.8.4-2: a SUBACK with the same Packet Identifier.
  channel.send({ cmd: 'suback', messageId: packet.messageId as number, granted: codes, properties });
  if (channel.session.expiryIntervalSeconds > 0 && codes.some((code) => code < 0x80)) channel.engine.saveSession(channel.session);
  for (const subscription of retained) await sendRetained(channel, subscription);
}

async function subscribeOne<C>(channel: ClientChannel<C>, requested: ISubscription, subscriptionId: number | undefined): Promise<Outcome | undefined> {
  const { engine, session, version } = channel;
  const failure = (v5Code: number): Outcome => ({ code: version === 5 ? v5Code : ReasonCode.UnspecifiedError });
  const parsed = parseTopicFilter(requested.topic, engine.limits);
  if (isTopicProblem(parsed)) {
    // 3.1.1 knows no per-filter reason: a filter breaking MQTT-4.7.1-1/-2 is a protocol violation.
    if (parsed === 'malformed') {
      if (version === 4) return void channel.protocolError(ReasonCode.MalformedPacket);
      return failure(ReasonCode.TopicFilterInvalid);
    }
    channel.limit(parsed === 'too-long' ? 'maxTopicLengthBytes' : 'maxTopicLevels');
    return failure(ReasonCode.TopicFilterInvalid);
  }
  const shared = parsed.shareGroup !== undefined;
  // MQTT-3.8.3-4: No Local on a shared subscription is a Protocol Error.
  if (shared && requested.nl === true) return void channel.protocolError(ReasonCode.ProtocolError);
  const existing = session.subscriptions.get(parsed.filter);
  if (existing === undefined && session.subscriptions.size >= engine.limits.maxSubscriptionsPerClient) {
    channel.limit('maxSubscriptionsPerClient');
    return failure(ReasonCode.QuotaExceeded);
  }
  const subscription: Subscription = {
    filter: parsed.filter,
    pattern: parsed.pattern,
    shareGroup: parsed.shareGroup,
    qos: Math.min(requested.qos, engine.limits.maximumQoS) as QoS,
    noLocal: requested.nl === true,
    retainAsPublished: requested.rap === true,
    retainHandling: (requested.rh ?? 0) as 0 | 1 | 2,
    subscriptionId,
  };
  const decided = await engine.hooks.authorizeSubscribe(channel.ref, subscription);
  if (channel.closed) return undefined;
  if (decided !== true) {
    engine.counters.denied.subscribe++;
    return failure(decided.reasonCode);
  }
  // MQTT-3.8.4-3: a filter already subscribed replaces the existing subscription.
  session.subscriptions.set(subscription.filter, subscription);
  engine.subscribe(session.clientId, subscription);
  // MQTT-3.3.1-9, -10, -11 (3.1.1 MQTT-3.3.1-6, MQTT-3.8.4-3); none for shared subscriptions (MQTT 4.8.2).
  const wantsRetained = !shared && (subscription.retainHandling === 0 || (subscription.retainHandling === 1 && existing === undefined));
  return { code: subscription.qos, sendRetained: wantsRetained ? subscription : undefined };
}

async function sendRetained<C>(channel: ClientChannel<C>, subscription: Subscription): Promise<void> {
  let messages;
  try {
    messages = await channel.engine.retained(subscription.pattern);
  } catch {
    channel.engine.counters.persistenceErrors++;
    return;
  }
  for (const message of messages) {
    if (channel.closed) return;
    // MQTT-3.3.1-8 (3.1.1): sent because of a new subscription, so RETAIN is 1; QoS per MQTT-3.8.4-8.
    channel.deliver({
      message,
      qos: Math.min(message.qos, subscription.qos) as QoS,
      retain: true,
      subscriptionIds: subscription.subscriptionId === undefined ? undefined : [subscription.subscriptionId],
    });
  }
}

/** An UNSUBSCRIBE: filters compared character by character (MQTT-3.10.4-1), one UNSUBACK (MQTT-3.10.4-4..-6). */
export function handleUnsubscribe<C>(channel: ClientChannel<C>, packet: IUnsubscribePacket): void {
  // MQTT-3.10.3-2: at least one Topic Filter; 3.1.1 MQTT-2.3.1-1: a non-zero packet id.
  if (packet.unsubscriptions.length === 0 || packet.messageId === 0) return channel.protocolError(ReasonCode.ProtocolError);
  const { engine, session } = channel;
  const codes = packet.unsubscriptions.map((filter) => {
    const existing = session.subscriptions.get(filter);
    if (existing === undefined) return ReasonCode.NoSubscriptionExisted;
    // MQTT-3.10.4-2: no new messages for it; those in flight still complete (MQTT-3.10.4-3).
    session.subscriptions.delete(filter);
    engine.unsubscribe(session.clientId, existing);
    return ReasonCode.Success;
  });
  channel.send({ cmd: 'unsuback', messageId: packet.messageId as number, granted: codes });
  if (session.expiryIntervalSeconds > 0 && codes.includes(ReasonCode.Success)) engine.saveSession(session);
}
