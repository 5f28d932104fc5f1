import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DELIVERY_HEADER, SIGNATURE_HEADER, verifySignature } from '../../src/webhooks/webhook-signature.js';

export interface Received {
  readonly delivery: string | undefined;
  readonly signatureValid: boolean;
  readonly body: Record<string, unknown>;
  readonly status: number;
  /** The body as received, and its signature header: what a receiver verifies. */
  readonly raw: string;
  readonly signature: string | undefined;
}

export interface WebhookReceiver {
  readonly url: string;
  /** The receiver's self-signed certificate, to pin as the webhook's CA. */
  readonly caPem: string;
  readonly received: Received[];
  /** Answers 503 to the next `n` requests. */
  failNext(n: number): void;
  /** While down, every request's connection is reset before any answer (an outage, not an error status). */
  setDown(down: boolean): void;
  /** The secret signatures are checked with (a secret Fleetward generates is known only after registering the URL). */
  setSecret(secret: string): void;
  close(): Promise<void>;
}

/** A real HTTPS endpoint on loopback that checks each notification's HMAC signature like a receiver must. */
export async function startWebhookReceiver(initialSecret: string): Promise<WebhookReceiver> {
  let secret = initialSecret;
  let down = false;
  const dir = mkdtempSync(join(tmpdir(), 'fw-webhook-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.pem'), 'utf8');
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const received: Received[] = [];
    let failures = 0;
    const server: Server = createServer({ key, cert, minVersion: 'TLSv1.2' }, (req, res) => {
      if (down) {
        req.socket.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const signature = req.headers[SIGNATURE_HEADER] as string | undefined;
        const signatureValid = verifySignature(secret, raw, signature);
        const status = failures > 0 ? 503 : signatureValid ? 204 : 401;
        if (failures > 0) failures -= 1;
        received.push({ delivery: req.headers[DELIVERY_HEADER] as string | undefined, signatureValid, body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, status, raw: raw.toString('utf8'), signature });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `https://127.0.0.1:${port}/hooks/fleetward`,
      caPem: cert,
      received,
      failNext: (n) => {
        failures = n;
      },
      setDown: (value) => {
        down = value;
      },
      setSecret: (value) => {
        secret = value;
      },
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
