import { sign, type KeyObject } from 'node:crypto';
import { nullValue, oid, sequence } from './der.js';
import { Oid } from './oids.js';

/**
 * Something that signs with a CA key: the key may be in memory (opened from its sealed form) or
 * in a PKCS#11 token. Signatures are returned DER-encoded as X.509 carries them.
 */
export interface Signer {
  /** The AlgorithmIdentifier of the signatures it makes. */
  readonly algorithm: Buffer;
  sign(data: Buffer): Promise<Buffer>;
}

export type SignatureHash = 'sha256' | 'sha384';

export function ecdsaAlgorithm(hash: SignatureHash): Buffer {
  // RFC 5758 §3.2: the parameters of ecdsa-with-SHA* are absent.
  return sequence(oid(hash === 'sha256' ? Oid.ecdsaWithSha256 : Oid.ecdsaWithSha384));
}

/** The signature hash that matches an EC key's curve (RFC 5480 §4). */
export function hashForCurve(namedCurve: string | undefined): SignatureHash {
  return namedCurve === 'P-384' || namedCurve === 'secp384r1' ? 'sha384' : 'sha256';
}

export function rsaAlgorithm(): Buffer {
  return sequence(oid(Oid.sha256WithRsa), nullValue());
}

/** Signs with a private key held in memory; node:crypto signs synchronously at full speed. */
export function softwareSigner(key: KeyObject): Signer {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const hash = hashForCurve(curve);
  const algorithm = key.asymmetricKeyType === 'rsa' ? rsaAlgorithm() : ecdsaAlgorithm(hash);
  return { algorithm, sign: (data) => Promise.resolve(sign(hash, data, key)) };
}
