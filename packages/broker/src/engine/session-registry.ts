import type { Delivery, Subscription } from '../message.js';
import type { Session } from '../session/session.js';

export type SlotState = 'absent' | 'opening' | 'online' | 'offline';
export type SlotEvent = 'open' | 'accept' | 'keep' | 'end' | 'restore';

/**
 * The one transition table of a client id's session on this node. `opening` covers the CONNECT
 * flow between taking the session and CONNACK: messages for it are held until it is online.
 * `open` from `online` or `opening` is a takeover by a newer connection (MQTT-3.1.4-3); `restore`
 * brings back a session persistence kept while this node was down.
 */
export const slotTransitions: Readonly<Record<SlotState, Readonly<Partial<Record<SlotEvent, SlotState>>>>> = {
  absent: { open: 'opening', restore: 'offline' },
  opening: { open: 'opening', accept: 'online', keep: 'offline', end: 'absent' },
  online: { open: 'opening', keep: 'offline', end: 'absent' },
  offline: { open: 'opening', end: 'absent' },
};

export type Slot<H> =
  | { readonly state: 'opening'; readonly holder: H; readonly session: Session; readonly held: Delivery[] }
  | { readonly state: 'online'; readonly holder: H; readonly session: Session }
  | { readonly state: 'offline'; readonly subscriptions: readonly Subscription[] };

/** Where each client id's session is: with a connection, being opened, or kept offline. Pure. */
export class SessionRegistry<H> {
  readonly #slots = new Map<string, Slot<H>>();
  #online = 0;
  #offline = 0;

  get onlineCount(): number {
    return this.#online;
  }

  get offlineCount(): number {
    return this.#offline;
  }

  get(clientId: string): Slot<H> | undefined {
    return this.#slots.get(clientId);
  }

  has(clientId: string): boolean {
    return this.#slots.has(clientId);
  }

  clientIds(): string[] {
    return [...this.#slots.keys()];
  }

  /** The session is taken by a connection running its CONNECT; `held` carries messages already held for it. */
  open(clientId: string, holder: H, session: Session, held: Delivery[]): void {
    this.#move(clientId, 'open', { state: 'opening', holder, session, held });
  }

  /** CONNACK is sent; returns the messages held meanwhile, to deliver now. */
  accept(clientId: string, holder: H): Delivery[] {
    const slot = this.#slots.get(clientId);
    if (slot?.state !== 'opening' || slot.holder !== holder) return [];
    this.#move(clientId, 'accept', { state: 'online', holder, session: slot.session });
    return slot.held;
  }

  keep(clientId: string, subscriptions: readonly Subscription[]): void {
    this.#move(clientId, 'keep', { state: 'offline', subscriptions });
  }

  restore(clientId: string, subscriptions: readonly Subscription[]): void {
    this.#move(clientId, 'restore', { state: 'offline', subscriptions });
  }

  end(clientId: string): void {
    this.#move(clientId, 'end', undefined);
  }

  /** Whether this holder is the one the client id's session is with (not one taken over since). */
  holds(clientId: string, holder: H): boolean {
    const slot = this.#slots.get(clientId);
    return slot !== undefined && slot.state !== 'offline' && slot.holder === holder;
  }

  #move(clientId: string, event: SlotEvent, next: Slot<H> | undefined): void {
    const current = this.#slots.get(clientId);
    const from: SlotState = current?.state ?? 'absent';
    const to = slotTransitions[from][event];
    if (to === undefined || to !== (next?.state ?? 'absent')) throw new Error(`session ${event} not allowed while ${from}`);
    if (from === 'online') this.#online--;
    if (from === 'offline') this.#offline--;
    if (to === 'online') this.#online++;
    if (to === 'offline') this.#offline++;
    if (next === undefined) this.#slots.delete(clientId);
    else this.#slots.set(clientId, next);
  }
}
