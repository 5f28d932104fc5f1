import { createSecureContext, type SecureContext } from 'node:tls';
import type { IClientOptions } from 'mqtt';
import type { TlsKey } from '../identity/device-key.js';

/** Credentials for one mTLS connection: the key and certificate presented, and the only CA trusted. */
export interface TlsIdentity {
  readonly key: TlsKey;
  readonly certPem: string;
  readonly caPem: string;
}

/**
 * The TLS client context of an identity: the platform's CA as the only trust anchor (no system
 * store, so a certificate from any public CA is refused), the device's certificate and key, TLS 1.2
 * as the floor. Building one parses the key and every certificate: about 1.5 ms of CPU with
 * OpenSSL 3, more than the rest of the client's side of a handshake.
 */
export function clientTlsContext(identity: TlsIdentity): SecureContext {
  return createSecureContext({
    cert: identity.certPem,
    ca: identity.caPem,
    minVersion: 'TLSv1.2',
    // A key in a token is reached through OpenSSL's PKCS#11 engine: the handshake is signed inside the token.
    ...('pem' in identity.key ? { key: identity.key.pem } : { privateKeyEngine: identity.key.engine, privateKeyIdentifier: identity.key.identifier }),
  });
}

/**
 * A session's TLS context, built once and reused by every connection attempt while the identity
 * stays the same (a device reconnecting after an outage does not parse its credentials again each
 * time); a renewed certificate or a new key builds a new one. With it, the last TLS session ticket
 * the gateway gave that context: the next connection resumes the session (about half the TLS CPU
 * of a full handshake on both sides; the gateway still checks the registry). A ticket the gateway no
 * longer accepts costs nothing: the handshake is then a full one, and brings a new ticket.
 */
export class TlsContextCache {
  #built: { readonly identity: TlsIdentity; readonly context: SecureContext } | null = null;
  #ticket: { readonly context: SecureContext; readonly ticket: Buffer } | null = null;

  contextFor(identity: TlsIdentity): SecureContext {
    const built = this.#built;
    if (built !== null && built.identity.key === identity.key && built.identity.certPem === identity.certPem && built.identity.caPem === identity.caPem) return built.context;
    const context = clientTlsContext(identity);
    this.#built = { identity, context };
    this.#ticket = null;
    return context;
  }

  /** The ticket to resume with in `context`, if the gateway gave one to this identity. */
  ticketFor(context: SecureContext): Buffer | undefined {
    return this.#ticket?.context === context ? this.#ticket.ticket : undefined;
  }

  /** Keeps a ticket received on a connection made with `context` (ignored if the identity changed since). */
  keepTicket(context: SecureContext, ticket: Buffer): void {
    if (this.#built?.context === context) this.#ticket = { context, ticket };
  }
}

/** How long a connection attempt may take (TCP, then TLS and CONNACK). */
export const CONNECT_TIMEOUT_MS = 15_000;

/**
 * MQTT.js options for a mutually authenticated TLS session in `context` (clientTlsContext): the
 * server's certificate must chain to the context's CA and name the host, and MQTT.js never
 * reconnects on its own (the agent decides when, with backoff). There is no option here that turns
 * any of this off.
 */
export function mqttTlsOptions(context: SecureContext, clientId: string, extra: Partial<IClientOptions> = {}, ticket?: Buffer): IClientOptions {
  const options: IClientOptions = { protocolVersion: 5, clientId, reconnectPeriod: 0, connectTimeout: CONNECT_TIMEOUT_MS, ...extra };
  // MQTT.js hands its options to tls.connect (mqtts), and wsOptions to the WebSocket's (wss; no resumption there).
  return Object.assign(options, { secureContext: context, rejectUnauthorized: true, wsOptions: { secureContext: context, rejectUnauthorized: true } }, ticket === undefined ? {} : { session: ticket });
}

/** The MQTT.js URL for an agent URL: only TLS transports exist. */
export function secureUrl(url: string): string {
  if (!/^(mqtts|wss):\/\//.test(url)) throw new Error(`refusing ${url}: the agent only connects over TLS`);
  return url;
}
