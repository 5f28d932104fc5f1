import { request } from 'node:https';
import { FleetwardError } from '@fleetward/protocol';

/**
 * The HTTPS side of Fleetward's outgoing webhooks, shared by alert notifications (rule 5) and
 * data consumers (rule 9): what a webhook URL may be, and the one way a signed POST is sent.
 */

/** Longest webhook URL accepted. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** Sends one signed POST; resolves with the HTTP status (the I/O edge, replaceable in tests). */
export type WebhookPost = (url: string, body: string, headers: Readonly<Record<string, string>>, caPem: string | null, timeoutMs: number) => Promise<number>;

/** Parses a webhook URL: https only, without credentials, bounded; FW_ERR_VALIDATION (field `url`) otherwise. */
export function checkWebhookUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new FleetwardError('FW_ERR_VALIDATION', 'the webhook URL is not a URL', { field: 'url' });
  }
  // Secrets and data never travel in clear: HTTPS only, no credentials in the URL.
  if (url.protocol !== 'https:') throw new FleetwardError('FW_ERR_VALIDATION', 'a webhook URL must be https://', { field: 'url' });
  if (url.username !== '' || url.password !== '') throw new FleetwardError('FW_ERR_VALIDATION', 'a webhook URL must not carry credentials (the HMAC signature authenticates)', { field: 'url' });
  if (text.length > MAX_WEBHOOK_URL_LENGTH) throw new FleetwardError('FW_ERR_VALIDATION', 'the webhook URL is too long', { field: 'url' });
  return url.toString();
}

/** The URL as shown and audited: origin and path, never a query string (it may hold a token). */
export function redactWebhookUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** POST over HTTPS (TLS 1.2+, certificate verified against the system's CAs or the pinned one), bounded in time; resolves with the status. */
export const httpsPost: WebhookPost = (url, body, headers, caPem, timeoutMs) =>
  new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, minVersion: 'TLSv1.2', timeout: timeoutMs, ...(caPem !== null && { ca: caPem }) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
