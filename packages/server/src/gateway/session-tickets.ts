import { createHash } from 'node:crypto';
import type { KeyRing } from '../identity/key-ring.js';

/** Ticket keys as node:tls takes them: a 16-byte key name, a 16-byte HMAC key and a 16-byte AES key. */
const TICKET_KEYS_BYTES = 48;

/**
 * TLS session tickets of the device listeners (rule 3). A reconnecting device resumes its session
 * instead of a full handshake (with TLS 1.3 the resumption still runs ECDHE: forward secret), which
 * halves the TLS CPU on both sides of a reconnect storm. The ticket keys are derived from the key
 * ring, so tickets survive a restart and every node sharing the ring accepts them. The keys change
 * every `lifetimeSeconds` (no ticket is accepted longer) and whenever the CAs devices chain to change:
 * a resumed handshake does not verify the certificate chain again, so no ticket outlives the trust
 * it was issued under. Admission checks the registry and the certificate's validity on every connection, resumed or not.
 */
export class SessionTickets {
  readonly lifetimeSeconds: number;
  readonly #keyRing: KeyRing;

  constructor(keyRing: KeyRing, lifetimeSeconds: number) {
    this.#keyRing = keyRing;
    this.lifetimeSeconds = lifetimeSeconds;
  }

  /** The ticket keys in force at `now` for listeners trusting `trustAnchors` (PEM). */
  keysFor(trustAnchors: string, now: Date): Buffer {
    const period = Math.floor(now.getTime() / (this.lifetimeSeconds * 1000));
    const trust = createHash('sha256').update(trustAnchors).digest('hex');
    return this.#keyRing.derive(`tls:session-tickets:${period}:${trust}`, TICKET_KEYS_BYTES);
  }

  /** Milliseconds from `now` until the keys change with the next period. */
  msUntilRotation(now: Date): number {
    const period = this.lifetimeSeconds * 1000;
    return period - (now.getTime() % period);
  }
}
