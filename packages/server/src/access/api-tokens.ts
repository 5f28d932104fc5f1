import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'fwt_';
const TOKEN_PATTERN = /^fwt_[A-Za-z0-9_-]{43}$/;

/**
 * A new API token: 256 random bits, prefixed so that secret scanners recognise it. Only the
 * SHA-256 of the token is stored; with 256 bits of entropy a fast hash cannot be brute-forced.
 */
export function generateToken(): { readonly token: string; readonly hash: string } {
  const token = PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function isWellFormedToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

/** A short public handle for a token, safe to list and log. */
export function newTokenId(): string {
  return `tok_${randomBytes(8).toString('hex')}`;
}
