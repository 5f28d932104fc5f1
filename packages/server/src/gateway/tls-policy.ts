import { constants } from 'node:crypto';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { Config } from '../config/settings.js';

/**
 * Forward-secret AEAD suites only (ECDHE key exchange; AES-GCM or ChaCha20-Poly1305). Node's
 * default list still offers CBC suites for TLS 1.2, which testssl.sh flags (LUCKY13). The TLS 1.3
 * suites are all AEAD and forward secret.
 */
export const TLS_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

export const TLS_GROUPS = 'X25519:P-256:P-384';

export interface ServerTlsCredentials {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Client certificates a listener asks for: none; `optional` (verified against `ca` when sent; the
 * route decides what a verified certificate may do; operators authenticate with tokens); or
 * `required` (the device gateway: no handshake completes without a certificate chaining to `ca`).
 */
export type ClientCertificates = { readonly mode: 'none' } | { readonly mode: 'optional' | 'required'; readonly ca: string };

/** TLS settings every Fleetward listener uses: TLS 1.2+ (or 1.3 only), AEAD suites, server preference. */
export function serverTlsOptions(credentials: ServerTlsCredentials, minVersion: Config['tls']['minVersion'], clients: ClientCertificates = { mode: 'none' }): TlsOptions & SecureContextOptions {
  return {
    cert: credentials.certPem,
    key: credentials.keyPem,
    minVersion,
    ciphers: TLS_CIPHERS,
    ecdhCurve: TLS_GROUPS,
    honorCipherOrder: true,
    ...(clients.mode !== 'none' && { requestCert: true, rejectUnauthorized: clients.mode === 'required', ca: clients.ca }),
  };
}

/** Session resumption on a device listener: tickets protected by `keys` (SessionTickets), accepted for `lifetimeSeconds`. */
export interface TicketSettings {
  readonly keys: Buffer;
  readonly lifetimeSeconds: number;
}

/**
 * The device listeners' TLS settings: a client certificate chaining to `trustAnchors` is required,
 * and sessions resume with tickets (or, with `tickets` null, never: every connection is a full handshake).
 */
export function deviceTlsOptions(credentials: ServerTlsCredentials, minVersion: Config['tls']['minVersion'], trustAnchors: string, tickets: TicketSettings | null): TlsOptions & SecureContextOptions {
  return {
    ...serverTlsOptions(credentials, minVersion, { mode: 'required', ca: trustAnchors }),
    // Fixed, so a ticket from before a restart is for the same context (node's default hashes the command line).
    sessionIdContext: 'fleetward-devices',
    ...(tickets === null ? { secureOptions: constants.SSL_OP_NO_TICKET } : { ticketKeys: tickets.keys, sessionTimeout: tickets.lifetimeSeconds }),
  };
}
