import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Readable } from 'node:stream';
import { FleetwardError, isErrorCode } from '@fleetward/protocol';

const MAX_RESPONSE_BYTES = 16 * 1_048_576;

/** A minimal client for a running node's API: HTTPS only, trusting the node's own CA chain. */
export class RemoteClient {
  readonly #base: URL;
  readonly #token: string;
  readonly #ca: string;

  constructor(url: string, token: string, caFile: string) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new FleetwardError('FW_ERR_USAGE', `FLEETWARD_URL ${JSON.stringify(url)} is not a URL`);
    }
    if (base.protocol !== 'https:') throw new FleetwardError('FW_ERR_USAGE', `FLEETWARD_URL must be an https:// URL, not ${base.protocol}`);
    this.#base = base;
    this.#token = token;
    try {
      this.#ca = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new FleetwardError('FW_ERR_USAGE', `cannot read the CA chain ${caFile} (set FLEETWARD_CA_FILE): ${(error as Error).message}`);
    }
  }

  /** Calls a JSON route; a problem answer becomes the FleetwardError it names. */
  async call<T>(method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH', path: string, body?: unknown): Promise<T> {
    return this.#answer<T>(method, path, await this.#request(method, path, body === undefined ? undefined : { body: JSON.stringify(body), contentType: 'application/json' }));
  }

  /** Streams a file to a route that takes raw bytes (a firmware artifact). */
  async upload<T>(path: string, body: Readable, headers: Readonly<Record<string, string>> = {}): Promise<T> {
    return this.#answer<T>('POST', path, await this.#request('POST', path, { body, contentType: 'application/octet-stream', headers }));
  }

  #answer<T>(method: string, path: string, { status, contentType, text }: { status: number; contentType: string; text: string }): T {
    const parsed = parseJson(text);
    if (status >= 200 && status < 300) return parsed as T;
    if (contentType.startsWith('application/problem+json') && typeof parsed === 'object' && parsed !== null) {
      const problem = parsed as { code?: unknown; detail?: unknown };
      if (isErrorCode(problem.code)) throw new FleetwardError(problem.code, typeof problem.detail === 'string' ? problem.detail : problem.code, { status });
    }
    throw new FleetwardError('FW_ERR_REMOTE', `${method} ${path} answered ${status}`, { status });
  }

  /** Fetches a text resource (such as /pki/ca.pem). */
  async text(path: string): Promise<string> {
    const { status, text } = await this.#request('GET', path, undefined);
    if (status !== 200) throw new FleetwardError('FW_ERR_REMOTE', `GET ${path} answered ${status}`, { status });
    return text;
  }

  async #request(method: string, path: string, payload: { body: string | Readable; contentType: string; headers?: Readonly<Record<string, string>> } | undefined): Promise<{ status: number; contentType: string; text: string }> {
    const url = new URL(path, this.#base);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.#ca,
          minVersion: 'TLSv1.2',
          headers: { authorization: `Bearer ${this.#token}`, accept: 'application/json', ...(payload !== undefined && { 'content-type': payload.contentType, ...payload.headers }) },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('response too large'));
            else chunks.push(chunk);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
      req.on('error', (error) => reject(new FleetwardError('FW_ERR_REMOTE', `cannot reach ${this.#base.origin}: ${error.message}`)));
      if (payload === undefined || typeof payload.body === 'string') req.end(payload?.body);
      else payload.body.on('error', (error) => req.destroy(error)).pipe(req);
    });
  }
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? null : JSON.parse(text);
  } catch {
    return null;
  }
}
