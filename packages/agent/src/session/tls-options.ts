import type { IClientOptions } from 'mqtt';

/** Credentials for one mTLS connection: the key and certificate presented, and the only CA trusted. */
export interface TlsIdentity {
  readonly keyPem: string;
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
  return {
    protocolVersion: 5,
    clientId,
    key: identity.keyPem,
    cert: identity.certPem,
    ca: identity.caPem,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    reconnectPeriod: 0,
    connectTimeout: 15_000,
    ...extra,
  } as IClientOptions;
}

/** The MQTT.js URL for an agent URL: only TLS transports exist. */
export function secureUrl(url: string): string {
  if (!/^(mqtts|wss):\/\//.test(url)) throw new Error(`refusing ${url}: the agent only connects over TLS`);
  return url;
}
