import { hashSecret, isWellFormedSecret, newSecret, newSecretId } from '../secrets.js';

/** Operator API tokens: `fwt_` + 256 random bits; only the hash is stored. */
export function generateToken(): { readonly token: string; readonly hash: string } {
  return newSecret('fwt_');
}

export const hashToken = hashSecret;

export function isWellFormedToken(value: string): boolean {
  return isWellFormedSecret(value, 'fwt_');
}

/** A short public handle for a token, safe to list and log. */
export function newTokenId(): string {
  return newSecretId('tok_');
}
