import type { webcrypto } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import type { Slot } from 'graphene-pk11';
import type { Crypto, CryptoKey } from 'node-webcrypto-p11';
import type { CaKeyAlgorithm } from '../keys.js';
import { integer, sequence } from '../pki/der.js';
import { ecdsaAlgorithm, hashForCurve, type Signer } from '../pki/signer.js';
import { PKCS11_PREFIX, type CustodyKey } from './key-custody.js';

export interface Pkcs11Settings {
  /** Absolute path of the PKCS#11 module. */
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: string;
}

type P11Crypto = Crypto;
type P11Key = CryptoKey;

/**
 * CA keys in a PKCS#11 token (an HSM; SoftHSM2 in tests), through node-webcrypto-p11: generated in
 * the token, sensitive and non-extractable, found again by label. One session per process: closing
 * one instance finalizes the module for all (see DEPENDENCIES.md).
 */
export class Pkcs11Custody {
  readonly #crypto: P11Crypto;

  private constructor(crypto: P11Crypto) {
    this.#crypto = crypto;
  }

  static #opened = new Map<string, Promise<Pkcs11Custody>>();

  /** Opens (once per process) the token with this label in the module, and logs in. */
  static open(settings: Pkcs11Settings): Promise<Pkcs11Custody> {
    const key = `${settings.module}\u0000${settings.tokenLabel}`;
    let opened = Pkcs11Custody.#opened.get(key);
    if (!opened) {
      opened = Pkcs11Custody.#connect(settings);
      Pkcs11Custody.#opened.set(key, opened);
      opened.catch(() => Pkcs11Custody.#opened.delete(key));
    }
    return opened;
  }

  static async #connect(settings: Pkcs11Settings): Promise<Pkcs11Custody> {
    // Loaded only when a token is configured: most nodes never need the native module.
    const [{ Crypto }, graphene] = await Promise.all([import('node-webcrypto-p11'), import('graphene-pk11')]);
    let slot: Slot | undefined;
    try {
      // Initialized once and never finalized: finalizing would end every session of the process.
      const module = graphene.Module.load(settings.module, 'fleetward');
      try {
        module.initialize();
      } catch (error) {
        if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test((error as Error).message)) throw error;
      }
      const slots = module.getSlots(true);
      for (let i = 0; i < slots.length; i++) if (slots.items(i).getToken().label.trim() === settings.tokenLabel) slot = slots.items(i);
    } catch (error) {
      throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `cannot load the PKCS#11 module ${settings.module}: ${(error as Error).message}`, { module: settings.module });
    }
    if (slot === undefined) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `no PKCS#11 token labelled ${settings.tokenLabel} in ${settings.module}`, { token: settings.tokenLabel });
    const session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    try {
      const crypto = new Crypto({ session });
      crypto.login(settings.pin);
      return new Pkcs11Custody(crypto);
    } catch (error) {
      session.close();
      throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `cannot log in to PKCS#11 token ${settings.tokenLabel}: ${(error as Error).message}`, { token: settings.tokenLabel });
    }
  }

  async generate(label: string, algorithm: CaKeyAlgorithm): Promise<CustodyKey> {
    const namedCurve = algorithm === 'ECDSA-P384' ? 'P-384' : 'P-256';
    // Sensitive, non-extractable, on the token: the private key never leaves it.
    const parameters: webcrypto.EcKeyGenParams & { label: string; token: boolean; sensitive: boolean } = { name: 'ECDSA', namedCurve, label, token: true, sensitive: true };
    const keys = (await this.#crypto.subtle.generateKey(parameters, false, ['sign', 'verify'])) as { privateKey: P11Key; publicKey: P11Key };
    await this.#crypto.keyStorage.setItem(keys.privateKey);
    const subjectPublicKeyInfo = Buffer.from(await this.#crypto.subtle.exportKey('spki', keys.publicKey));
    return { subjectPublicKeyInfo, signer: this.#signerFor(keys.privateKey, namedCurve), reference: `${PKCS11_PREFIX}${label}` };
  }

  async signer(label: string): Promise<Signer> {
    for (const id of await this.#crypto.keyStorage.keys()) {
      if (!id.startsWith('private-')) continue;
      const key = await this.#crypto.keyStorage.getItem(id);
      const algorithm = key?.algorithm as { label?: string; namedCurve?: string } | undefined;
      if (key && algorithm?.label === label) return this.#signerFor(key, algorithm.namedCurve ?? 'P-256');
    }
    throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `the PKCS#11 token has no key labelled ${label}`, { key: label });
  }

  /** The SubjectPublicKeyInfo of the key pair with this label (the public half is on the token too). */
  async publicKey(label: string): Promise<Buffer> {
    for (const id of await this.#crypto.keyStorage.keys()) {
      if (!id.startsWith('public-')) continue;
      const key = await this.#crypto.keyStorage.getItem(id);
      if (key && (key.algorithm as { label?: string }).label === label) return Buffer.from(await this.#crypto.subtle.exportKey('spki', key));
    }
    throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `the PKCS#11 token has no public key labelled ${label}`, { key: label });
  }

  #signerFor(key: P11Key, namedCurve: string): Signer {
    const hash = hashForCurve(namedCurve);
    const subtle = this.#crypto.subtle;
    return {
      algorithm: ecdsaAlgorithm(hash),
      // The token hashes outside (SoftHSM has no CKM_ECDSA_SHA256) and answers r||s; X.509 wants DER.
      sign: async (data) => p1363ToDer(Buffer.from(await subtle.sign({ name: 'ECDSA', hash: hash === 'sha384' ? 'SHA-384' : 'SHA-256' }, key, data))),
    };
  }
}

/** ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } from IEEE P1363 r||s. */
export function p1363ToDer(signature: Buffer): Buffer {
  const half = signature.length / 2;
  return sequence(integer(signature.subarray(0, half)), integer(signature.subarray(half)));
}
