import { MessageReader } from './validate.js';

/** Where a device keeps its private key, as it declares at enrollment. */
export const KEY_STORAGES = ['software', 'pkcs11', 'tpm'] as const;
export type DeviceKeyStorage = (typeof KEY_STORAGES)[number];

/** Requests are small: a CSR and a few fields. */
export const MAX_REQUEST_BYTES = 16_384;
const CLIENT_TOKEN = { maxLength: 64, pattern: /^[\x21-\x7e]+$/ };
const CSR = { maxLength: 12_000, pattern: /^-----BEGIN CERTIFICATE REQUEST-----/ };

/** `$fw/provisioning/{template}/request`: a device with a claim certificate trades its CSR for its own certificate. */
export interface ProvisioningRequest {
  readonly csr: string;
  /** Values for the template's parameters (validated against their patterns). */
  readonly parameters?: Readonly<Record<string, string>>;
  readonly keyStorage?: DeviceKeyStorage;
  readonly attestation?: Readonly<Record<string, string>>;
  /** Echoed in the answer, so a device can match answer and request. */
  readonly clientToken?: string;
}

/** `$fw/things/{thing}/cert/renew/request`: a device renews its certificate with a new key. */
export interface RenewalRequest {
  readonly csr: string;
  readonly keyStorage?: DeviceKeyStorage;
  readonly attestation?: Readonly<Record<string, string>>;
  readonly clientToken?: string;
}

/** `.../accepted`: the new certificate and the chain to present with it. */
export interface CertificateAccepted {
  readonly thing: string;
  readonly serial: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly notAfter: string;
  readonly clientToken?: string;
}

/** `.../rejected`: a stable error code (docs/errors.md) and why. */
export interface RequestRejected {
  readonly code: string;
  readonly message: string;
  readonly clientToken?: string;
}

/** `$fw/things/{thing}/cert/renew/required`: renew now. */
export interface RenewalRequired {
  readonly serial: string;
  readonly reason: 'must-rotate';
}

export function parseProvisioningRequest(payload: Uint8Array): ProvisioningRequest {
  const reader = MessageReader.of(payload, 'provisioning request', MAX_REQUEST_BYTES);
  const request = {
    csr: reader.string('csr', CSR),
    parameters: reader.optionalStringMap('parameters', { maxEntries: 32, maxLength: 256 }),
    keyStorage: reader.optionalChoice('keyStorage', KEY_STORAGES),
    attestation: reader.optionalStringMap('attestation', { maxEntries: 32, maxLength: 1024 }),
    clientToken: reader.optionalString('clientToken', CLIENT_TOKEN),
  };
  reader.done();
  return withoutUndefined(request);
}

export function parseRenewalRequest(payload: Uint8Array): RenewalRequest {
  const reader = MessageReader.of(payload, 'renewal request', MAX_REQUEST_BYTES);
  const request = {
    csr: reader.string('csr', CSR),
    keyStorage: reader.optionalChoice('keyStorage', KEY_STORAGES),
    attestation: reader.optionalStringMap('attestation', { maxEntries: 32, maxLength: 1024 }),
    clientToken: reader.optionalString('clientToken', CLIENT_TOKEN),
  };
  reader.done();
  return withoutUndefined(request);
}

/** The client token of a request too broken to parse, when it can still be read, to echo in the rejection. */
export function clientTokenOf(payload: Uint8Array): string | undefined {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(payload));
    const token = typeof value === 'object' && value !== null ? (value as Record<string, unknown>).clientToken : undefined;
    return typeof token === 'string' && token.length <= CLIENT_TOKEN.maxLength && CLIENT_TOKEN.pattern.test(token) ? token : undefined;
  } catch {
    return undefined;
  }
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
