import { createHash, randomBytes } from 'node:crypto';

/**
 * Bearer secrets (operator tokens `fwt_`, enrollment tokens `fwe_`): 256 random bits, prefixed so
 * secret scanners recognise them. Only the SHA-256 is stored; with 256 bits of entropy a fast hash
 * cannot be brute-forced.
 */
export function newSecret(prefix: 'fwt_' | 'fwe_'): { readonly token: string; readonly hash: string } {
  const token = prefix + randomBytes(32).toString('base64url');
  return { token, hash: hashSecret(token) };
}

export function hashSecret(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function isWellFormedSecret(value: string, prefix: 'fwt_' | 'fwe_'): boolean {
  return value.length === prefix.length + 43 && value.startsWith(prefix) && /^[A-Za-z0-9_-]{43}$/.test(value.slice(prefix.length));
}

/** A short public handle for a secret, safe to list and log. */
export function newSecretId(prefix: 'tok_' | 'enr_'): string {
  return `${prefix}${randomBytes(8).toString('hex')}`;
}
