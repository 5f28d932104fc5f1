import { createPublicKey } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { readPrivateFile } from '../../config/home.js';
import { Pkcs11Custody } from '../../identity/custody/pkcs11-custody.js';
import { addSignatures, generateTufKey, keyIdOf, privateKeySigner, tufPublicKeyOf, type TufPublicKey, type TufSigner } from './keys.js';

/** A key in a PKCS#11 token: the module, the token, its PIN and the key's label. */
export interface Pkcs11KeyRef {
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly keyLabel: string;
}

/**
 * The offline half of the TUF workflow (rule 4): keys made and kept away from the server, and
 * metadata signed where they are. Nothing here needs a Fleetward data folder or a network.
 */

/** A new Ed25519 key in a file (PKCS#8 PEM, for a 0600 file) and its public half (for root metadata). */
export function newKeyFile(): { privateKeyPem: string; publicKey: TufPublicKey; keyid: string } {
  return generateTufKey();
}

/** A new ECDSA P-256 key generated inside a PKCS#11 token (it never leaves it); returns its public half. */
export async function newTokenKey(ref: Pkcs11KeyRef): Promise<{ publicKey: TufPublicKey; keyid: string }> {
  const custody = await Pkcs11Custody.open({ module: ref.module, tokenLabel: ref.tokenLabel, pin: ref.pin });
  const key = await custody.generate(ref.keyLabel, 'ECDSA-P256');
  const publicKey = tufPublicKeyOf(createPublicKey({ key: key.subjectPublicKeyInfo, format: 'der', type: 'spki' }));
  return { publicKey, keyid: keyIdOf(publicKey) };
}

/** A signer for a key file (it must be readable by its owner only). */
export async function keyFileSigner(path: string): Promise<TufSigner> {
  const pem = (await readPrivateFile(path, 'TUF signing key')).toString('utf8');
  try {
    return privateKeySigner(pem);
  } catch (error) {
    if (error instanceof FleetwardError) throw error;
    throw new FleetwardError('FW_ERR_USAGE', `${path} holds no private key: ${(error as Error).message}`);
  }
}

/** A signer for a key in a PKCS#11 token: the token signs, the key stays in it. */
export async function tokenSigner(ref: Pkcs11KeyRef): Promise<TufSigner> {
  const custody = await Pkcs11Custody.open({ module: ref.module, tokenLabel: ref.tokenLabel, pin: ref.pin });
  const [signer, spki] = await Promise.all([custody.signer(ref.keyLabel), custody.publicKey(ref.keyLabel)]);
  const publicKey = tufPublicKeyOf(createPublicKey({ key: spki, format: 'der', type: 'spki' }));
  return { keyid: keyIdOf(publicKey), publicKey, sign: (data) => signer.sign(data) };
}

/**
 * Adds signatures to root or targets metadata (a proposal from the server, or one already signed by
 * other key holders, for thresholds above 1). Only the offline roles are signed this way.
 */
export async function signMetadata(json: unknown, signers: readonly TufSigner[]): Promise<{ signed: unknown; signatures: { keyid: string; sig: string }[] }> {
  const metadata = json as { signed?: { _type?: unknown }; signatures?: unknown } | null;
  const role = metadata?.signed?._type;
  if (typeof metadata !== 'object' || metadata === null || (role !== 'root' && role !== 'targets') || !Array.isArray(metadata.signatures)) {
    throw new FleetwardError('FW_ERR_VALIDATION', 'only TUF root or targets metadata (a proposal from `fleetward firmware root|targets propose`) is signed offline');
  }
  const signatures = (metadata.signatures as unknown[]).filter((s): s is { keyid: string; sig: string } => typeof (s as { keyid?: unknown })?.keyid === 'string' && typeof (s as { sig?: unknown })?.sig === 'string');
  return addSignatures({ signed: metadata.signed, signatures }, signers);
}
