import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Signature } from '@tufjs/models';
import { FleetwardError } from '@fleetward/protocol';

/** The public half of a TUF key as it appears in root metadata (`keys`): `keytype`, `scheme`, `keyval.public`. */
export interface TufPublicKey {
  readonly keytype: 'ed25519' | 'ecdsa-sha2-nistp256';
  readonly scheme: 'ed25519' | 'ecdsa-sha2-nistp256';
  readonly keyval: { readonly public: string };
}

/** Something that signs canonical JSON for a TUF key: a key file, a sealed online key, or a PKCS#11 token. */
export interface TufSigner {
  readonly keyid: string;
  readonly publicKey: TufPublicKey;
  sign(data: Buffer): Promise<Buffer>;
}

/** A fresh Ed25519 key: the private key as PKCS#8 PEM, and its TUF public key. */
export function generateTufKey(): { privateKeyPem: string; publicKey: TufPublicKey; keyid: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const tuf = tufPublicKeyOf(publicKey);
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: tuf, keyid: keyIdOf(tuf) };
}

/** The TUF public key of an Ed25519 (hex, as the reference implementation writes it) or P-256 (PEM) key. */
export function tufPublicKeyOf(key: KeyObject): TufPublicKey {
  if (key.asymmetricKeyType === 'ed25519') {
    const raw = key.export({ format: 'der', type: 'spki' }).subarray(-32);
    return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: raw.toString('hex') } };
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { keytype: 'ecdsa-sha2-nistp256', scheme: 'ecdsa-sha2-nistp256', keyval: { public: key.export({ format: 'pem', type: 'spki' }).toString() } };
  }
  throw new FleetwardError('FW_ERR_KEY_REJECTED', 'a TUF signing key must be Ed25519 or ECDSA P-256');
}

/** The key id: SHA-256 of the key's canonical JSON (TUF specification, "keyid"). */
export function keyIdOf(key: TufPublicKey): string {
  return createHash('sha256').update(canonicalize(key)).digest('hex');
}

/** A `@tufjs/models` Key for a public key, to put in root metadata or verify with. */
export function modelKeyOf(key: TufPublicKey): Key {
  return new Key({ keyID: keyIdOf(key), keyType: key.keytype, scheme: key.scheme, keyVal: { public: key.keyval.public } });
}

/** Reads a TUF public key from JSON (a `.pub.json` file or an API body), refusing anything else. */
export function parseTufPublicKey(value: unknown, what: string): TufPublicKey {
  const key = value as Partial<TufPublicKey> | null;
  const pub = key?.keyval?.public;
  const valid =
    typeof key === 'object' &&
    key !== null &&
    typeof pub === 'string' &&
    ((key.keytype === 'ed25519' && key.scheme === 'ed25519' && /^[0-9a-f]{64}$/.test(pub)) || (key.keytype === 'ecdsa-sha2-nistp256' && key.scheme === 'ecdsa-sha2-nistp256' && pub.startsWith('-----BEGIN PUBLIC KEY-----')));
  if (!valid) throw new FleetwardError('FW_ERR_VALIDATION', `${what} is not a TUF Ed25519 or ECDSA P-256 public key ({"keytype","scheme","keyval":{"public"}})`);
  try {
    // Refuses a hex string or PEM that is not a point on the curve.
    void createPublicKey(modelKeyPem(key as TufPublicKey));
  } catch {
    throw new FleetwardError('FW_ERR_VALIDATION', `${what} holds no valid public key`);
  }
  return { keytype: key.keytype, scheme: key.scheme, keyval: { public: pub } };
}

function modelKeyPem(key: TufPublicKey): string {
  if (key.keytype !== 'ed25519') return key.keyval.public;
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(key.keyval.public, 'hex')]);
  return createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString();
}

/** A signer from a private key in memory (a key file, or an online key unsealed for the moment). */
export function privateKeySigner(privateKeyPem: string): TufSigner {
  const privateKey = createPrivateKey(privateKeyPem);
  const publicKey = tufPublicKeyOf(createPublicKey(privateKey));
  // Ed25519 signs the message itself; ECDSA hashes with SHA-256 and gives DER, which TUF verifiers take.
  const algorithm = publicKey.keytype === 'ed25519' ? null : 'sha256';
  return { keyid: keyIdOf(publicKey), publicKey, sign: (data) => Promise.resolve(sign(algorithm, data, privateKey)) };
}

/**
 * Signs the `signed` part of metadata JSON with each signer and returns the metadata with those
 * signatures added (a signature by the same key replaces the old one). The models' own `sign()` is
 * synchronous, so HSM signers could not use it: the canonical form is built here.
 */
export async function addSignatures(metadata: { signed: unknown; signatures: readonly { keyid: string; sig: string }[] }, signers: readonly TufSigner[]): Promise<{ signed: unknown; signatures: { keyid: string; sig: string }[] }> {
  const data = Buffer.from(canonicalize(metadata.signed as never));
  const added = await Promise.all(signers.map(async (signer) => new Signature({ keyID: signer.keyid, sig: (await signer.sign(data)).toString('hex') })));
  const replaced = new Set(added.map((s) => s.keyID));
  const signatures = [...metadata.signatures.filter((s) => !replaced.has(s.keyid)), ...added.map((s) => ({ keyid: s.keyID, sig: s.sig }))];
  return { signed: metadata.signed, signatures };
}
