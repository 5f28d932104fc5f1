import type { Delivery, Message, QoS, Subscription } from '../message.js';
import type { MatchVisitor, SharedGroup, SubscriptionIndex } from '../topic/subscription-index.js';

interface Plan {
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
}

/**
 * Turns one published message into deliveries (MQTT-4.5.0-1): one per subscribed session, at the
 * highest QoS of its matching subscriptions (MQTT-3.3.4-2, 3.1.1 MQTT-3.3.5-1) capped by the
 * message's (MQTT-3.8.4-8), carrying all their Subscription Identifiers (MQTT-3.3.4-4); plus one
 * per shared subscription, to one member (MQTT 4.8.2). Pure apart from the sink it feeds.
 */
export class Router {
  readonly #index: SubscriptionIndex<Subscription>;
  readonly #isOnline: (clientId: string) => boolean;
  readonly #sink: (clientId: string, delivery: Delivery) => void;

  constructor(index: SubscriptionIndex<Subscription>, isOnline: (clientId: string) => boolean, sink: (clientId: string, delivery: Delivery) => void) {
    this.#index = index;
    this.#isOnline = isOnline;
    this.#sink = sink;
  }

  route(message: Message): void {
    this.#route(message, true);
  }

  /** Delivers to the plain subscriptions only: in a cluster, shared subscriptions are decided across nodes. */
  routeSubscribers(message: Message): void {
    this.#route(message, false);
  }

  /** Delivers to one member of the shared group on this pattern, if this node has any; false if not. */
  routeGroup(message: Message, pattern: string, groupName: string): boolean {
    const chosen = this.#index.group(pattern, groupName)?.pick(this.#isOnline);
    if (chosen === undefined) return false;
    this.#sink(chosen.clientId, sharedDelivery(message, chosen.value));
    return true;
  }

  #route(message: Message, groups: boolean): void {
    const collector = new Collector(message, this.#isOnline, groups);
    this.#index.match(message.topic, collector);
    for (const [clientId, plan] of collector.plans) {
      this.#sink(clientId, { message, qos: plan.qos, retain: plan.retain, subscriptionIds: plan.subscriptionIds });
    }
    for (const [clientId, delivery] of collector.shared) this.#sink(clientId, delivery);
  }
}

class Collector implements MatchVisitor<Subscription> {
  readonly plans = new Map<string, Plan>();
  readonly shared: [string, Delivery][] = [];
  readonly #message: Message;
  readonly #isOnline: (clientId: string) => boolean;
  readonly #groups: boolean;

  constructor(message: Message, isOnline: (clientId: string) => boolean, groups: boolean) {
    this.#message = message;
    this.#isOnline = isOnline;
    this.#groups = groups;
  }

  subscriber(clientId: string, subscription: Subscription): void {
    const message = this.#message;
    // MQTT-3.8.3-3: No Local keeps a client's own messages from it.
    if (subscription.noLocal && clientId === message.publisher) return;
    const qos = Math.min(message.qos, subscription.qos) as QoS;
    // MQTT-3.3.1-12, -13 (3.1.1 MQTT-3.3.1-9): RETAIN is kept only under Retain As Published.
    const retain = subscription.retainAsPublished && message.retain;
    const id = subscription.subscriptionId;
    const plan = this.plans.get(clientId);
    if (plan === undefined) {
      this.plans.set(clientId, { qos, retain, subscriptionIds: id === undefined ? undefined : [id] });
      return;
    }
    if (qos > plan.qos) plan.qos = qos;
    plan.retain ||= retain;
    if (id !== undefined) (plan.subscriptionIds ??= []).push(id);
  }

  group(group: SharedGroup<Subscription>): void {
    if (!this.#groups) return;
    // One member per message, preferring one that is connected.
    const chosen = group.pick(this.#isOnline);
    if (chosen !== undefined) this.shared.push([chosen.clientId, sharedDelivery(this.#message, chosen.value)]);
  }
}

function sharedDelivery(message: Message, subscription: Subscription): Delivery {
  return {
    message,
    qos: Math.min(message.qos, subscription.qos) as QoS,
    retain: subscription.retainAsPublished && message.retain,
    subscriptionIds: subscription.subscriptionId === undefined ? undefined : [subscription.subscriptionId],
  };
}
