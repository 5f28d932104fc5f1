import { generateKeyPairSync } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { NodeContext } from '../../src/node.js';
import { csrFor } from './csr.js';

export interface DeviceCredentials {
  readonly name: string;
  readonly serial: string;
  readonly keyPem: string;
  /** The device certificate followed by the issuing CA (what a device presents). */
  readonly certPem: string;
}

const operator = { name: 'operator:test' };

/** A registered thing with its own key and a certificate issued from its CSR, as manufacturing makes it. */
export async function deviceWithCertificate(context: NodeContext, name: string, options: { readonly create?: boolean } = {}): Promise<DeviceCredentials> {
  if (options.create !== false) await context.identity.things.create({ name }, operator);
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issued = await context.identity.certificates.issue({ subject: name, kind: 'device', csr: csrFor(name, keys), via: 'operator', keyStorage: 'software' }, operator);
  return { name, serial: issued.serial, keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: issued.certificatePem + issued.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] };
}

export interface Connected {
  readonly client: MqttClient;
  end(): Promise<void>;
}

/**
 * Connects with MQTT.js over mutual TLS. Resolves when connected; rejects with the CONNACK reason
 * code (`code`) or the TLS error when refused.
 */
export async function connectDevice(mqttUrl: string, caPem: string, device: { keyPem: string; certPem: string }, options: IClientOptions & { clientId: string }): Promise<Connected> {
  const client = await mqtt.connectAsync(mqttUrl, { ca: caPem, key: device.keyPem, cert: device.certPem, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5_000, rejectUnauthorized: true, ...options });
  return { client, end: () => client.endAsync() };
}

/** The error a refused connection fails with: CONNACK reason code, or a TLS/socket error code. */
export async function refusal(attempt: Promise<Connected>): Promise<{ code: number | string | undefined; message: string }> {
  try {
    const connected = await attempt;
    await connected.end();
  } catch (error) {
    const e = error as { code?: number | string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error('expected the connection to be refused');
}
