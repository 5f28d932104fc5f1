import type { ThingState } from './registry/lifecycle.js';

/** What identity tells the rest of the node, after the change is committed. */
export interface IdentityEventMap {
  /** A thing changed state; the gateway closes its live connections unless it may still connect. */
  thingStateChanged: { readonly thing: string; readonly from: ThingState; readonly to: ThingState };
  /** Certificates were revoked; the gateway closes connections that use them. */
  certificatesRevoked: { readonly thing: string | null; readonly serials: readonly string[]; readonly reason: string };
  /** Device certificates were issued (from a CSR, a renewal, EST); the credential audit re-checks the things. */
  certificatesIssued: { readonly things: readonly string[] };
  /** An operator asked a device to rotate its certificate; the gateway tells the device. */
  rotationRequested: { readonly thing: string; readonly serial: string };
}

type Listener<K extends keyof IdentityEventMap> = (event: IdentityEventMap[K]) => void;

/**
 * A small typed event hub. Listeners run after the change they describe has committed; a listener
 * that throws is reported and does not stop the others.
 */
export class IdentityEvents {
  readonly #listeners = new Map<keyof IdentityEventMap, Set<Listener<keyof IdentityEventMap>>>();
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => undefined) {
    this.#onListenerError = onListenerError;
  }

  on<K extends keyof IdentityEventMap>(name: K, listener: Listener<K>): () => void {
    const set = this.#listeners.get(name) ?? new Set();
    set.add(listener as Listener<keyof IdentityEventMap>);
    this.#listeners.set(name, set);
    return () => set.delete(listener as Listener<keyof IdentityEventMap>);
  }

  emit<K extends keyof IdentityEventMap>(name: K, event: IdentityEventMap[K]): void {
    for (const listener of this.#listeners.get(name) ?? []) {
      try {
        (listener as Listener<K>)(event);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }
}
