import type { ConnectionOptions } from 'node:tls';
import type { IClientOptions } from 'mqtt';
import type { TlsKey } from '../identity/device-key.js';

/** Credentials for one mTLS connection: the key and certificate presented, and the only CA trusted. */
export interface TlsIdentity {
  readonly key: TlsKey;
  readonly certPem: string;
  readonly caPem: string;
}

/**
 * MQTT.js options for a mutually authenticated TLS session: the platform's CA is the only trust
 * anchor (no system store, so a certificate from any public CA is refused), the server name is
 * checked, TLS 1.2 is the floor, and MQTT.js never reconnects on its own (the agent decides when,
 * with backoff). There is no option here that turns any of this off.
 */
export function mqttTlsOptions(identity: TlsIdentity, clientId: string, extra: Partial<IClientOptions> = {}): IClientOptions {
  const tlsOptions: ConnectionOptions = {
    cert: identity.certPem,
    ca: identity.caPem,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // A key in a token is reached through OpenSSL's PKCS#11 engine: the handshake is signed inside the token.
    ...('pem' in identity.key ? { key: identity.key.pem } : { privateKeyEngine: identity.key.engine, privateKeyIdentifier: identity.key.identifier }),
  };
  const options: IClientOptions = { protocolVersion: 5, clientId, reconnectPeriod: 0, connectTimeout: 15_000, ...extra };
  // MQTT.js hands its options to tls.connect: the TLS settings travel in the same object.
  return Object.assign(options, tlsOptions);
}

/** The MQTT.js URL for an agent URL: only TLS transports exist. */
export function secureUrl(url: string): string {
  if (!/^(mqtts|wss):\/\//.test(url)) throw new Error(`refusing ${url}: the agent only connects over TLS`);
  return url;
}
