import { createHmac, timingSafeEqual } from 'node:crypto';

// One signature format for every Fleetward webhook (alert notifications, data consumers), so a
// receiver verifies them all with the same few lines.

/** The header carrying `sha256=<hex HMAC-SHA256 of the raw body under the webhook's secret>`. */
export const SIGNATURE_HEADER = 'x-fleetward-signature';
export const DELIVERY_HEADER = 'x-fleetward-delivery';

export function signBody(secret: string | Buffer, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** What a receiver does: recompute over the raw bytes, compare in constant time. */
export function verifySignature(secret: string | Buffer, body: string | Buffer, header: string | undefined): boolean {
  if (header === undefined || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(signBody(secret, body));
  const given = Buffer.from(header);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Exponential backoff after the n-th failed attempt (1-based), capped. */
export function backoffMs(attempts: number, limits: { readonly baseMs: number; readonly capMs: number }): number {
  return Math.min(limits.capMs, limits.baseMs * 2 ** Math.max(0, attempts - 1));
}
