import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BaseFetcher } from 'tuf-js';
import { DownloadHTTPError, DownloadLengthMismatchError } from 'tuf-js/dist/error.js';
import type { TlsIdentity } from '../session/tls-options.js';
import { AGENT_VERSION } from '../version.js';

/** Bytes gathered before they are written to the partial file and handed to tuf-js. */
const BLOCK_BYTES = 1024 * 1024;

export interface MtlsFetcherOptions {
  /** Read at every request: after a renewal the new certificate is presented. */
  readonly identity: () => TlsIdentity;
  /** Where interrupted downloads are kept, one file per URL. */
  readonly partialDir: string;
  /** URLs whose content never changes (content-addressed targets): only those are resumed with Range. */
  readonly resumable: (url: string) => boolean;
  /** No byte for this long: the request is abandoned (and resumed by the next attempt). */
  readonly idleTimeoutMs?: number;
  /** Bytes of `url` received so far (including those already on disk from an earlier attempt). */
  readonly onProgress?: (url: string, bytes: number) => void;
}

/**
 * tuf-js's fetcher over node:https with the device's own mTLS identity, the same one the MQTT
 * session uses (a key file or a PKCS#11 token through OpenSSL's engine): the platform CA is the
 * only trust anchor, TLS 1.2 is the floor. What tuf-js downloads it still measures against the
 * signed lengths and hashes; this class only moves bytes.
 *
 * Interrupted downloads resume (RFC 9110 §14): every byte received is appended to a partial file
 * kept per URL; the next attempt yields those bytes first and asks `Range: bytes=N-`. A server
 * that answers 200 instead of 206 (or a Content-Range that starts elsewhere) restarts the file
 * from zero; 416 drops the partial file and asks again. A download that ran past its allowed
 * length, or completed, leaves no partial file behind.
 */
export class MtlsFetcher extends BaseFetcher {
  readonly #options: MtlsFetcherOptions;
  readonly #responses = new Map<string, Set<IncomingMessage>>();

  constructor(options: MtlsFetcherOptions) {
    super();
    this.#options = options;
  }

  partialPath(url: string): string {
    return join(this.#options.partialDir, `${createHash('sha256').update(url).digest('hex').slice(0, 40)}.part`);
  }

  override async downloadFile<T>(url: string, maxLength: number, handler: (file: string) => Promise<T>): Promise<T> {
    try {
      return await super.downloadFile(url, maxLength, handler);
    } catch (error) {
      // Endless data: what was kept is already too long, resuming it would only fail again.
      if (error instanceof DownloadLengthMismatchError) await rm(this.partialPath(url), { force: true });
      throw error;
    } finally {
      for (const response of this.#responses.get(url) ?? []) response.destroy();
      this.#responses.delete(url);
    }
  }

  async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    if (!url.startsWith('https://')) throw new DownloadHTTPError(`refusing ${url}: updates are fetched over HTTPS only`, 400);
    const partial = this.#options.resumable(url) ? this.partialPath(url) : null;
    if (partial !== null) await mkdir(this.#options.partialDir, { recursive: true, mode: 0o700 });
    let have = partial === null ? 0 : await sizeOf(partial);
    let response = await this.#get(url, have);
    if (have > 0 && !(response.statusCode === 206 && contentRangeStart(response) === have)) {
      if (response.statusCode === 200) have = 0; // the server ignores Range: this full answer replaces the partial file
      else {
        response.destroy();
        if (partial !== null) await rm(partial, { force: true });
        have = 0;
        response = await this.#get(url, 0);
      }
    }
    if (response.statusCode !== 200 && !(have > 0 && response.statusCode === 206)) {
      response.destroy();
      throw new DownloadHTTPError(`GET ${url} answered ${response.statusCode}`, response.statusCode ?? 0);
    }
    this.#track(url, response);
    const onProgress = this.#options.onProgress;
    const from = have;
    async function* body(): AsyncGenerator<Buffer> {
      let received = 0;
      if (partial !== null && from > 0) {
        for await (const chunk of createReadStream(partial, { end: from - 1 })) {
          received += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        onProgress?.(url, received);
      }
      const out = partial === null ? null : await open(partial, from > 0 ? 'a' : 'w', 0o600);
      let complete = false;
      // TLS hands over 16 KiB records: gathered into larger blocks, a write and a hand-over per block.
      let block: Buffer[] = [];
      let blockBytes = 0;
      const flush = async (): Promise<Buffer> => {
        const data = block.length === 1 ? (block[0] as Buffer) : Buffer.concat(block, blockBytes);
        block = [];
        blockBytes = 0;
        // On disk before it is handed on: whatever tuf-js saw, the next attempt will not ask for again.
        await out?.write(data);
        received += data.length;
        onProgress?.(url, received);
        return data;
      };
      try {
        for await (const chunk of response) {
          block.push(chunk as Buffer);
          blockBytes += (chunk as Buffer).length;
          if (blockBytes >= BLOCK_BYTES) yield await flush();
        }
        if (blockBytes > 0) yield await flush();
        if (!response.complete) throw Object.assign(new Error(`the download of ${url} was cut off`), { code: 'FW_DOWNLOAD_ABORTED' });
        complete = true;
      } catch (error) {
        // Cut off: what arrived is kept for the next attempt, though tuf-js never saw it.
        if (blockBytes > 0) await out?.write(Buffer.concat(block, blockBytes)).catch(() => undefined);
        throw error;
      } finally {
        await out?.close();
        if (complete && partial !== null) await rm(partial, { force: true });
      }
    }
    return Readable.toWeb(Readable.from(body())) as ReadableStream<Uint8Array<ArrayBuffer>>;
  }

  #track(url: string, response: IncomingMessage): void {
    const set = this.#responses.get(url) ?? new Set();
    set.add(response);
    this.#responses.set(url, set);
  }

  #get(url: string, from: number): Promise<IncomingMessage> {
    const identity = this.#options.identity();
    const timeout = this.#options.idleTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'GET',
          agent: false,
          ca: identity.caPem,
          cert: identity.certPem,
          // A key in a token signs the handshake inside the token, through OpenSSL's PKCS#11 engine.
          ...('pem' in identity.key ? { key: identity.key.pem } : { privateKeyEngine: identity.key.engine, privateKeyIdentifier: identity.key.identifier }),
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
          timeout,
          headers: { 'user-agent': `fleetward-agent/${AGENT_VERSION}`, ...(from > 0 && { range: `bytes=${from}-` }) },
        },
        resolve,
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no data from ${url} for ${timeout} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });
  }
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then((s) => s.size, () => 0);
}

/** The first byte of a 206 answer (`Content-Range: bytes 100-199/200`), or -1. */
function contentRangeStart(response: IncomingMessage): number {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers['content-range'] ?? '');
  return match ? Number(match[1]) : -1;
}
