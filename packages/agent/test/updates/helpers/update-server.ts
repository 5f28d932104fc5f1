import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TestPki } from './mtls-certs.js';
import type { TestRepository } from './tuf-repository.js';

export interface ServedRequest {
  readonly path: string;
  readonly range: string | null;
  /** The client certificate's CN. */
  readonly client: string | null;
}

/**
 * The platform's update endpoints as devices see them: HTTPS with client certificates required
 * (the platform CA only), metadata under /updates/v1/metadata, targets under /updates/v1/targets
 * with byte ranges. Hooks let a test play the network or an attacker.
 */
export class UpdateServer {
  readonly requests: ServedRequest[] = [];
  repository: TestRepository;
  /** Served instead of the signed bytes (an attacker who changed the artifact after signing). */
  readonly replaced = new Map<string, Buffer>();
  /** The next N target responses stop after this many bytes and drop the connection. */
  cut: { afterBytes: number; times: number } | null = null;
  /** Ignore Range headers (answer 200 with the whole file). */
  ignoreRange = false;
  readonly #server: Server;

  private constructor(server: Server, repository: TestRepository) {
    this.#server = server;
    this.repository = repository;
  }

  static async start(pki: TestPki, repository: TestRepository): Promise<UpdateServer> {
    let self: UpdateServer | null = null;
    const server = createServer({ key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (req, res) => self?.handle(req, res));
    self = new UpdateServer(server, repository);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return self;
  }

  get base(): string {
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}/updates/v1`;
  }

  get metadataUrl(): string {
    return `${this.base}/metadata`;
  }

  get targetsUrl(): string {
    return `${this.base}/targets`;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    this.requests.push({ path, range: req.headers.range ?? null, client: typeof peer.subject?.CN === 'string' ? peer.subject.CN : null });
    const meta = /^\/updates\/v1\/metadata\/([^/]+)$/.exec(path);
    if (meta) {
      const body = this.repository.metadata.get(meta[1] as string);
      if (!body) return void res.writeHead(404).end();
      return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
    }
    const target = /^\/updates\/v1\/targets\/([^/]+)$/.exec(path);
    const name = target?.[1] as string;
    const body = this.replaced.get(name) ?? this.repository.files.get(name);
    if (!body) return void res.writeHead(404).end();
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !this.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      res.writeHead(206, { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': body.length - start });
    } else res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    const part = body.subarray(start);
    if (this.cut !== null && this.cut.times > 0) {
      this.cut.times -= 1;
      const afterBytes = this.cut.afterBytes;
      res.write(part.subarray(0, afterBytes), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    res.end(part);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
