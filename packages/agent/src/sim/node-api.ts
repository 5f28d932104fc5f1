import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { FleetwardError, isErrorCode } from '@fleetward/protocol';

/** Where the simulator finds the node: the operator's environment (`FLEETWARD_URL`, `FLEETWARD_TOKEN`, `FLEETWARD_HOME`). */
export interface NodeTarget {
  readonly apiUrl: string;
  readonly token: string;
  /** The node's CA chain (`$FLEETWARD_HOME/ca.pem`): trusted for the API and pinned by every simulated device. */
  readonly caPem: string;
}

export async function nodeTargetFromEnvironment(env: NodeJS.ProcessEnv): Promise<NodeTarget> {
  const apiUrl = env.FLEETWARD_URL;
  const token = env.FLEETWARD_TOKEN;
  const home = env.FLEETWARD_HOME ?? './.fleetward';
  if (!apiUrl?.startsWith('https://')) throw new FleetwardError('FW_ERR_USAGE', 'set FLEETWARD_URL to the node\'s API URL (https://host:port)');
  if (!token) throw new FleetwardError('FW_ERR_USAGE', 'set FLEETWARD_TOKEN to an operator API token (role operator or admin)');
  const caPem = await readFile(join(home, 'ca.pem'), 'utf8').catch(() => {
    throw new FleetwardError('FW_ERR_USAGE', `no CA chain at ${join(home, 'ca.pem')}: set FLEETWARD_HOME to the node's data folder`);
  });
  return { apiUrl, token, caPem };
}

/** A thin client of the operator API, trusting only the node's CA. */
export class NodeApi {
  readonly #target: NodeTarget;

  constructor(target: NodeTarget) {
    this.#target = target;
  }

  async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.#target.apiUrl);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url, { method, ca: this.#target.caPem, headers: { authorization: `Bearer ${this.#target.token}`, ...(payload !== undefined && { 'content-type': 'application/json' }) }, timeout: 60_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
    const value = text === '' ? undefined : (JSON.parse(text) as unknown);
    if (status >= 400) {
      const problem = (value ?? {}) as { code?: unknown; detail?: unknown };
      throw new FleetwardError(isErrorCode(problem.code) ? problem.code : 'FW_ERR_REMOTE', `${method} ${path}: ${typeof problem.detail === 'string' ? problem.detail : `HTTP ${status}`}`, { status });
    }
    return value as T;
  }
}
