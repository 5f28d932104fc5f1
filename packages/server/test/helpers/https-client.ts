import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The parsed JSON body (or null). Typed loosely on purpose: tests inspect any field. */
  readonly body: Record<string, unknown> & { code?: string };
}

export interface CallOptions {
  readonly method?: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
  readonly token?: string;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as is, with `contentType`. */
  readonly raw?: string | Buffer;
  readonly contentType?: string;
}

/** One HTTPS request to a node over real TLS, trusting only the node's CA chain. */
export function call(ca: string, url: string, options: CallOptions = {}): Promise<Answer> {
  const payload = options.json !== undefined ? JSON.stringify(options.json) : options.raw;
  const contentType = options.json !== undefined ? 'application/json' : options.contentType;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca,
        headers: {
          ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
          ...(contentType !== undefined && { 'content-type': contentType }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Answer['body'] = {};
          try {
            body = JSON.parse(text) as Answer['body'];
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
