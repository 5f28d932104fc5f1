import type { Delivery } from '../message.js';
import type { StoredSession } from '../persistence/persistence.js';
import { Session } from '../session/session.js';
import type { OpenedSession, SessionHolder } from './engine-context.js';
import type { EngineSessions } from './engine-sessions.js';
import { SessionSupersededError, SessionUnavailableError } from './session-errors.js';
import type { Slot } from './session-registry.js';

type OfflineSlot = Extract<Slot<unknown>, { state: 'offline' }>;

interface Resumed {
  readonly stored: StoredSession | undefined;
  readonly queued: Delivery[];
  /** Messages routed to the session while it was read. */
  readonly arriving: Delivery[];
}

/**
 * Opening a session for a client id this node holds, or knows nothing of: the live session is
 * taken over from the older connection (MQTT-3.1.4-3), an offline one is resumed from persistence,
 * or a new one is made (MQTT-3.1.2-4..-6).
 */
export class HeldSessions<C> {
  readonly #state: EngineSessions<C>;
  /** Offline sessions being resumed: messages routed to them meanwhile wait here, behind their queue. */
  readonly #resuming = new Map<string, Delivery[]>();

  constructor(state: EngineSessions<C>) {
    this.#state = state;
  }

  /** Where a message for an offline session waits while it is being resumed; undefined if it is not. */
  resuming(clientId: string): Delivery[] | undefined {
    return this.#resuming.size === 0 ? undefined : this.#resuming.get(clientId);
  }

  async open(holder: SessionHolder<C>, clientId: string, cleanStart: boolean, expirySeconds: number): Promise<OpenedSession> {
    const state = this.#state;
    const maxQueued = state.limits.maxQueuedMessages;
    const slot = state.registry.get(clientId);
    let session: Session | undefined;
    let queued: Delivery[] = [];
    let held: Delivery[] = [];
    if (slot !== undefined && slot.state !== 'offline') {
      if (slot.state === 'opening') held = slot.held;
      // MQTT-3.1.4-3: the existing connection is closed and its live session handed over.
      slot.holder.takeOver();
      const handed = slot.session;
      if (!cleanStart && handed.expiryIntervalSeconds > 0) session = handed;
      else state.discard(clientId, [...handed.subscriptions.values()], handed.stored);
    } else if (slot?.state === 'offline') {
      const resumed = await this.#resume(slot, clientId, cleanStart);
      if (resumed.stored === undefined) state.discard(clientId, slot.subscriptions, true);
      else {
        queued = resumed.queued;
        held = resumed.arriving;
        session = Session.restore(resumed.stored, expirySeconds, maxQueued);
      }
    }
    // MQTT-3.1.2-4: Clean Start discards the session; MQTT-3.1.2-5, -6: else resume it or make one.
    const present = session !== undefined;
    session ??= new Session(clientId, expirySeconds, maxQueued);
    session.expiryIntervalSeconds = expirySeconds;
    state.registry.open(clientId, holder, session, held);
    // MQTT-3.1.3-9: a resumed session cancels its delayed Will Message; an ended one sends it now.
    if (present) state.wills.cancel(clientId);
    else state.wills.send(clientId);
    return { session, present, queued };
  }

  /** Reads an offline session and its queue (nothing on Clean Start), holding the messages that arrive meanwhile. */
  async #resume(slot: OfflineSlot, clientId: string, cleanStart: boolean): Promise<Resumed> {
    const state = this.#state;
    // Not expired while it is being resumed; due again if resuming fails.
    const due = state.sessionsDue.at(clientId);
    state.sessionsDue.delete(clientId);
    const arriving: Delivery[] = [];
    this.#resuming.set(clientId, arriving);
    let read: { stored: StoredSession; queued: Delivery[] } | undefined;
    try {
      read = cleanStart ? undefined : await this.#read(clientId);
    } catch (error) {
      if (due !== undefined && state.registry.get(clientId) === slot) state.sessionsDue.set(clientId, due);
      for (const delivery of arriving) state.writes.enqueue(clientId, delivery);
      throw error;
    } finally {
      this.#resuming.delete(clientId);
    }
    if (state.registry.get(clientId) !== slot) {
      // Another node claimed the session meanwhile: what was taken goes back to it, in order.
      await state.writes.enqueueNow(clientId, [...(read?.queued ?? []), ...arriving]);
      throw new SessionSupersededError(`session ${clientId} was taken over by another node`);
    }
    return { stored: read?.stored, queued: read?.queued ?? [], arriving };
  }

  async #read(clientId: string): Promise<{ stored: StoredSession; queued: Delivery[] } | undefined> {
    const persistence = this.#state.persistence;
    try {
      const stored = await persistence.sessions.get(clientId);
      return stored === undefined ? undefined : { stored, queued: await persistence.queues.take(clientId) };
    } catch (error) {
      this.#state.counters.persistenceErrors++;
      throw new SessionUnavailableError('the session store is unavailable', { cause: error });
    }
  }
}
