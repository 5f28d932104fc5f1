import type { Delivery } from '../message.js';

export type FlightState = 'awaiting-puback' | 'awaiting-pubrec' | 'awaiting-pubcomp';
export type FlightEvent = 'puback' | 'pubrec' | 'pubrec-refused' | 'pubcomp';

/**
 * The one transition table of a QoS 1 or 2 message the server has sent. `done` frees its Packet
 * Identifier and its place in the window: PUBACK for QoS 1 (MQTT-4.3.2-3), PUBCOMP for QoS 2
 * (MQTT-4.3.3-5), or a PUBREC with a reason code of 0x80 or more (MQTT-4.4.0-2).
 */
export const flightTransitions: Readonly<Record<FlightState, Readonly<Partial<Record<FlightEvent, FlightState | 'done'>>>>> = {
  'awaiting-puback': { puback: 'done' },
  'awaiting-pubrec': { pubrec: 'awaiting-pubcomp', 'pubrec-refused': 'done' },
  'awaiting-pubcomp': { pubcomp: 'done' },
};

export interface Flight {
  readonly packetId: number;
  readonly delivery: Delivery;
  readonly state: FlightState;
}

export type Offer = { readonly flight: Flight } | { readonly queued: true; readonly dropped: Delivery | undefined };

const MAX_PACKET_ID = 0xffff;

/**
 * The QoS 1 and 2 messages of one session on their way to the client: those in flight, bounded by
 * the client's Receive Maximum (MQTT-3.3.4-9, MQTT-4.9.0-2), and those queued behind them, bounded
 * by our queue limit with the oldest dropped first. Pure: it decides, the connection sends.
 */
export class OutgoingWindow {
  readonly #maxQueued: number;
  #capacity: number;
  readonly #flights = new Map<number, Flight>();
  #queue: (Delivery | undefined)[] = [];
  #head = 0;
  #lastPacketId = 0;

  constructor(maxQueued: number, capacity = MAX_PACKET_ID) {
    this.#maxQueued = maxQueued;
    this.#capacity = capacity;
  }

  /** The send quota of the current connection (MQTT-4.9.0-1); not part of the session state. */
  setCapacity(capacity: number): void {
    this.#capacity = Math.max(1, Math.min(capacity, MAX_PACKET_ID));
  }

  get queuedCount(): number {
    return this.#queue.length - this.#head;
  }

  get hasRoom(): boolean {
    return this.#flights.size < this.#capacity;
  }

  /** A new QoS 1 or 2 delivery: in flight when the window has room, queued otherwise. */
  offer(delivery: Delivery): Offer {
    if (this.hasRoom && this.queuedCount === 0) return { flight: this.start(delivery) };
    return { queued: true, dropped: this.enqueue(delivery) };
  }

  /** Queues a delivery; returns the oldest one dropped to make room, if any. */
  enqueue(delivery: Delivery): Delivery | undefined {
    this.#queue.push(delivery);
    if (this.queuedCount <= this.#maxQueued) return undefined;
    return this.#shift();
  }

  /** The next queued delivery, when the window has room for it. */
  dequeue(): Delivery | undefined {
    return this.hasRoom ? this.#shift() : undefined;
  }

  /** Puts a delivery in flight under an unused Packet Identifier (MQTT-2.2.1-4, MQTT-4.3.2-1). */
  start(delivery: Delivery): Flight {
    const flight: Flight = { packetId: this.#nextPacketId(), delivery, state: delivery.qos === 2 ? 'awaiting-pubrec' : 'awaiting-puback' };
    this.#flights.set(flight.packetId, flight);
    return flight;
  }

  /** Applies an acknowledgement; undefined when no flight with that identifier expects it. */
  acknowledge(packetId: number, event: FlightEvent): FlightState | 'done' | undefined {
    const flight = this.#flights.get(packetId);
    if (flight === undefined) return undefined;
    const next = flightTransitions[flight.state][event];
    if (next === undefined) return undefined;
    if (next === 'done') this.#flights.delete(packetId);
    else this.#flights.set(packetId, { ...flight, state: next });
    return next;
  }

  stateOf(packetId: number): FlightState | undefined {
    return this.#flights.get(packetId)?.state;
  }

  /** Forgets a flight that was never sent (too large for the client, MQTT-3.1.2-25). */
  abandon(packetId: number): void {
    this.#flights.delete(packetId);
  }

  /** Flights in the order they were first sent, for resending on reconnect (MQTT-4.4.0-1, MQTT-4.6.0-1). */
  flights(): Flight[] {
    return [...this.#flights.values()];
  }

  /** Restores flights from a stored session, keeping their identifiers. */
  restore(flights: readonly Flight[]): void {
    for (const flight of flights) {
      this.#flights.set(flight.packetId, flight);
      this.#lastPacketId = flight.packetId;
    }
  }

  /** Empties the queue (the session goes offline and its queue moves to persistence). */
  takeQueue(): Delivery[] {
    const queued = this.#queue.slice(this.#head) as Delivery[];
    this.#queue = [];
    this.#head = 0;
    return queued;
  }

  #shift(): Delivery | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const delivery = this.#queue[this.#head];
    this.#queue[this.#head] = undefined;
    this.#head++;
    if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return delivery;
  }

  #nextPacketId(): number {
    let id = this.#lastPacketId;
    do id = id >= MAX_PACKET_ID ? 1 : id + 1;
    while (this.#flights.has(id));
    this.#lastPacketId = id;
    return id;
  }
}
