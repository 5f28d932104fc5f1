import { createPublicKey, type KeyObject } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';

/** The device key algorithms Fleetward accepts (the profile): nothing weaker. */
export type DeviceKeyAlgorithm = 'ECDSA-P256' | 'ECDSA-P384' | 'Ed25519' | 'RSA';

export interface DeviceKey {
  readonly algorithm: DeviceKeyAlgorithm;
  /** RSA modulus length; the curve size for EC keys. */
  readonly bits: number;
  readonly publicKey: KeyObject;
}

export const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;

/** Describes a SubjectPublicKeyInfo, refusing weak or unsupported keys with FW_ERR_KEY_REJECTED. */
export function checkDeviceKey(subjectPublicKeyInfo: Buffer): DeviceKey {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: subjectPublicKeyInfo, format: 'der', type: 'spki' });
  } catch {
    throw new FleetwardError('FW_ERR_KEY_REJECTED', 'the public key cannot be read (unsupported algorithm or curve)');
  }
  const details = publicKey.asymmetricKeyDetails ?? {};
  switch (publicKey.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve === 'prime256v1') return { algorithm: 'ECDSA-P256', bits: 256, publicKey };
      if (details.namedCurve === 'secp384r1') return { algorithm: 'ECDSA-P384', bits: 384, publicKey };
      throw new FleetwardError('FW_ERR_KEY_REJECTED', `EC curve ${details.namedCurve ?? 'unknown'} is not accepted: use P-256 or P-384`, { curve: details.namedCurve ?? null });
    case 'ed25519':
      return { algorithm: 'Ed25519', bits: 256, publicKey };
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < RSA_MIN_BITS) throw new FleetwardError('FW_ERR_KEY_REJECTED', `RSA keys must have at least ${RSA_MIN_BITS} bits, not ${bits}`, { bits });
      if (bits > RSA_MAX_BITS) throw new FleetwardError('FW_ERR_KEY_REJECTED', `RSA keys above ${RSA_MAX_BITS} bits are not accepted`, { bits });
      if (details.publicExponent !== 65537n) throw new FleetwardError('FW_ERR_KEY_REJECTED', 'RSA keys must use the public exponent 65537');
      return { algorithm: 'RSA', bits, publicKey };
    }
    default:
      throw new FleetwardError('FW_ERR_KEY_REJECTED', `${publicKey.asymmetricKeyType ?? 'this'} keys are not accepted: use ECDSA P-256/P-384, Ed25519 or RSA ≥ ${RSA_MIN_BITS}`);
  }
}
