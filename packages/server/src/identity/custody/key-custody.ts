import { FleetwardError } from '@fleetward/protocol';
import type { KeyRing } from '../key-ring.js';
import { exportPkcs8, generateKeyPair, importPrivateKey, spkiOf, type CaKeyAlgorithm } from '../keys.js';
import { softwareSigner, type Signer } from '../pki/signer.js';
import type { Pkcs11Custody } from './pkcs11-custody.js';

/** A CA key as custody hands it out: its public key, how to sign with it, and what to store. */
export interface CustodyKey {
  readonly subjectPublicKeyInfo: Buffer;
  readonly signer: Signer;
  /** What the database keeps: the sealed key (`fwseal1.…`) or a token reference (`pkcs11:<label>`). */
  readonly reference: string;
}

export const PKCS11_PREFIX = 'pkcs11:';

/**
 * Where CA keys are made and used. New keys go where the configuration says (sealed with the KEK,
 * or non-extractable in a PKCS#11 token); existing keys are opened from whatever their stored
 * reference names, so a node can move to a token without losing the keys it already has.
 */
export class KeyCustody {
  readonly #keyRing: KeyRing;
  readonly #pkcs11: (() => Promise<Pkcs11Custody>) | null;
  readonly #mode: 'sealed' | 'pkcs11';

  constructor(keyRing: KeyRing, mode: 'sealed' | 'pkcs11', pkcs11: (() => Promise<Pkcs11Custody>) | null) {
    if (mode === 'pkcs11' && pkcs11 === null) throw new FleetwardError('FW_ERR_CONFIG_INVALID', 'pki.keyCustody is pkcs11 but no PKCS#11 module, token label and PIN are configured (pki.pkcs11Module, pki.pkcs11TokenLabel, pki.pkcs11PinFile)');
    this.#keyRing = keyRing;
    this.#mode = mode;
    this.#pkcs11 = pkcs11;
  }

  get mode(): 'sealed' | 'pkcs11' {
    return this.#mode;
  }

  async generate(caId: string, algorithm: CaKeyAlgorithm): Promise<CustodyKey> {
    if (this.#mode === 'pkcs11') return (await this.#token()).generate(`fleetward-ca-${caId}`, algorithm);
    const keys = await generateKeyPair(algorithm);
    return { subjectPublicKeyInfo: spkiOf(keys.publicKey), signer: softwareSigner(keys.privateKey), reference: this.#keyRing.seal(exportPkcs8(keys.privateKey), `ca:${caId}`) };
  }

  async signer(caId: string, reference: string): Promise<Signer> {
    if (reference.startsWith(PKCS11_PREFIX)) return (await this.#token()).signer(reference.slice(PKCS11_PREFIX.length));
    return softwareSigner(importPrivateKey(this.#keyRing.open(reference, `ca:${caId}`)));
  }

  async #token(): Promise<Pkcs11Custody> {
    if (this.#pkcs11 === null) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'a CA key is held in a PKCS#11 token, but no module, token label and PIN are configured (pki.pkcs11Module, pki.pkcs11TokenLabel, pki.pkcs11PinFile)');
    return this.#pkcs11();
  }
}
