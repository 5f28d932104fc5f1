import { ReasonCode } from '@fleetward/protocol';
import type { Packet } from 'mqtt-packet';
import type { LimitName } from '../broker-options.js';
import { SharedPublishEncodings } from '../codec/encoded-publish.js';
import type { EngineContext } from '../engine/engine-context.js';
import type { ClientRef } from '../hooks/broker-hooks.js';
import { isExpired, type Delivery } from '../message.js';
import { OutboundTopicAliases } from '../session/outbound-topic-aliases.js';
import type { Flight } from '../session/outgoing-window.js';
import type { Session } from '../session/session.js';
import { buildPublish } from './outgoing-publish.js';

/** What the outbound side uses of its connection. */
export interface OutboundChannel<C> {
  readonly engine: EngineContext<C>;
  readonly version: 4 | 5;
  readonly ref: ClientRef<C>;
  readonly session: Session;
  readonly closed: boolean;
  /** Bytes handed to the network stream that it has not taken yet. */
  readonly pendingWriteBytes: number;
  send(packet: Packet): boolean;
  limit(name: LimitName): void;
}

/** One encoding per message for all the connections it is delivered to (see SharedPublishEncodings). */
const sharedEncodings = new SharedPublishEncodings();

/**
 * Messages on their way to one connected client: the delivery policy first, in arrival order,
 * then expiry, flow control (the session's outgoing window) and the client's limits.
 */
export class OutboundDeliveries<C> {
  readonly #channel: OutboundChannel<C>;
  /** Only for an MQTT 5 client that accepts Topic Aliases (MQTT-3.1.2-27: none otherwise). */
  readonly #aliases: OutboundTopicAliases | undefined;
  /** Deliveries waiting behind a delivery decision that takes time; undefined when none is pending. */
  #gate: Delivery[] | undefined;

  constructor(channel: OutboundChannel<C>, clientTopicAliasMaximum: number) {
    this.#channel = channel;
    this.#aliases = channel.version === 5 && clientTopicAliasMaximum > 0 ? new OutboundTopicAliases(clientTopicAliasMaximum) : undefined;
  }

  deliver(delivery: Delivery): void {
    const channel = this.#channel;
    if (channel.closed) return channel.engine.redirect(channel.ref.clientId, delivery);
    if (this.#gate !== undefined) {
      this.#gate.push(delivery);
      if (this.#gate.length > channel.engine.limits.maxQueuedMessages) {
        this.#gate.shift();
        channel.limit('maxQueuedMessages');
      }
      return;
    }
    const allowed = channel.engine.hooks.authorizeDelivery(channel.ref, delivery.message);
    if (allowed === true) return this.#accept(delivery);
    if (allowed === false) {
      channel.engine.counters.denied.delivery++;
      return;
    }
    // A decision that takes time holds the deliveries behind it, so they stay in order (MQTT-4.6.0-5).
    this.#gate = [];
    void allowed.then((settled) => {
      if (settled) this.#accept(delivery);
      else channel.engine.counters.denied.delivery++;
      const waiting = this.#gate ?? [];
      this.#gate = undefined;
      for (const next of waiting) this.deliver(next);
    });
  }

  /** Resends what was in flight, with its ids and in order (MQTT-4.4.0-1, MQTT-4.6.0-1), then delivers what was queued. */
  resume(queued: readonly Delivery[]): void {
    for (const flight of this.#channel.session.outgoing.flights()) {
      this.#sendFlight(flight, true);
      if (this.#channel.closed) return;
    }
    for (const delivery of queued) this.deliver(delivery);
  }

  /** Sends queued messages while the client's Receive Maximum leaves room (MQTT-4.9.0-2). */
  pump(): void {
    const channel = this.#channel;
    const outgoing = channel.session.outgoing;
    for (let delivery = outgoing.dequeue(); delivery !== undefined && !channel.closed; delivery = outgoing.dequeue()) {
      if (this.#expired(delivery)) continue;
      this.#sendFlight(outgoing.start(delivery), false);
    }
  }

  #accept(delivery: Delivery): void {
    const channel = this.#channel;
    if (channel.closed) return channel.engine.redirect(channel.ref.clientId, delivery);
    if (this.#expired(delivery)) return;
    if (delivery.qos === 0) {
      // A client whose socket does not drain loses QoS 0 messages rather than the broker's memory.
      if (channel.pendingWriteBytes > channel.engine.limits.maxPendingWriteBytes) return channel.limit('maxPendingWriteBytes');
      this.#sendPublish(delivery, undefined, false);
      return;
    }
    const offer = channel.session.outgoing.offer(delivery);
    if ('flight' in offer) this.#sendFlight(offer.flight, false);
    else if (offer.dropped !== undefined) channel.limit('maxQueuedMessages');
  }

  /** MQTT-3.3.2-5: a message whose expiry interval has passed is not sent. */
  #expired(delivery: Delivery): boolean {
    if (delivery.message.expiresAt === undefined || !isExpired(delivery.message, this.#channel.engine.now())) return false;
    this.#channel.engine.counters.messagesExpired++;
    return true;
  }

  #sendFlight(flight: Flight, resend: boolean): void {
    const channel = this.#channel;
    // MQTT-4.3.3-6: once PUBREL is sent, only PUBREL is resent.
    if (flight.state === 'awaiting-pubcomp') {
      channel.send({ cmd: 'pubrel', messageId: flight.packetId, reasonCode: ReasonCode.Success });
      return;
    }
    // MQTT-3.3.1-1: a resent PUBLISH has DUP 1.
    if (this.#sendPublish(flight.delivery, flight.packetId, resend) || channel.closed) return;
    // MQTT-3.1.2-25: too large for the client: discarded, as if it had been delivered.
    channel.session.outgoing.abandon(flight.packetId);
    this.pump();
  }

  #sendPublish(delivery: Delivery, packetId: number | undefined, dup: boolean): boolean {
    const channel = this.#channel;
    const { message } = delivery;
    const version = channel.version;
    const aliases = this.#aliases;
    const alias = aliases?.lookup(message.topic);
    let packet: Packet;
    if (alias === undefined && (version === 4 || (message.expiresAt === undefined && delivery.subscriptionIds === undefined))) {
      // Nothing in the PUBLISH is particular to this client: the message's one encoding serves.
      packet = sharedEncodings.packet(message, delivery.qos, delivery.retain, version, packetId, dup && delivery.qos > 0);
    } else {
      const now = message.expiresAt === undefined ? 0 : channel.engine.now();
      packet = buildPublish(delivery, version, packetId, dup, alias, now);
    }
    if (!channel.send(packet)) return false;
    if (alias !== undefined && !alias.known) aliases?.commit(message.topic, alias.alias);
    channel.engine.counters.messagesDelivered++;
    return true;
  }
}
