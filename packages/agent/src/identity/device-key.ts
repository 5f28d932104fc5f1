import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { generateDeviceKey, keyPem, type DeviceKeyPair } from './key-file.js';

/** How TLS reaches the private key: its PEM, or an OpenSSL engine that signs inside a token. */
export type TlsKey = { readonly pem: string } | { readonly engine: string; readonly identifier: string };

/** The device's key, wherever it lives: what TLS, the CSR and the certificate checks need of it. */
export interface DeviceKey {
  readonly storage: 'software' | 'pkcs11';
  readonly tls: TlsKey;
  readonly publicKey: KeyObject;
  /** What the agent's folder keeps to find the key again: the PEM itself (0600), or the token object's label. */
  readonly reference: string;
  /** WebCrypto keys and the provider that signs with them (a CSR is signed where the key lives). */
  signing(): Promise<{ readonly keys: { readonly privateKey: webcrypto.CryptoKey; readonly publicKey: webcrypto.CryptoKey }; readonly crypto: webcrypto.Crypto }>;
}

/** Where new device keys are made and found again. */
export interface DeviceKeyStore {
  /** The file in the agent's folder that holds a key's reference. */
  readonly file: 'device.key' | 'device.p11';
  generate(): Promise<DeviceKey>;
  load(reference: string): Promise<DeviceKey>;
  /** Removes a key replaced by a renewal (a token's storage is finite; a file is simply overwritten). */
  discard(key: DeviceKey): Promise<void>;
}

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A key in a 0600 file of the agent's folder. */
export function softwareDeviceKey(pair: DeviceKeyPair): DeviceKey {
  const pem = keyPem(pair);
  return {
    storage: 'software',
    tls: { pem },
    publicKey: pair.publicKey,
    reference: pem,
    async signing() {
      const keys = {
        privateKey: await webcrypto.subtle.importKey('pkcs8', pair.privateKey.export({ type: 'pkcs8', format: 'der' }), ECDSA, false, ['sign']),
        publicKey: await webcrypto.subtle.importKey('spki', pair.publicKey.export({ type: 'spki', format: 'der' }), ECDSA, true, ['verify']),
      };
      return { keys, crypto: webcrypto };
    },
  };
}

export const softwareKeyStore: DeviceKeyStore = {
  file: 'device.key',
  generate: () => Promise.resolve(softwareDeviceKey(generateDeviceKey())),
  load(reference) {
    const privateKey = createPrivateKey(reference);
    return Promise.resolve(softwareDeviceKey({ privateKey, publicKey: createPublicKey(privateKey) }));
  },
  discard: () => Promise.resolve(),
};
