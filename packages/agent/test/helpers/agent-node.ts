import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig, type AgentConfig } from '../../src/config/agent-config.js';
import type { Clock } from '../../../server/src/clock.js';
import { startTestNode, type TestNode } from '../../../server/test/helpers/test-node.js';

export interface AgentNode {
  readonly t: TestNode;
  readonly mqttUrl: string;
  readonly apiUrl: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly dir: string;
  /** A configuration for `thing` in a fresh state folder (relative paths resolve in the test folder). */
  config(thing: string, extra?: Record<string, unknown>): AgentConfig;
  close(): Promise<void>;
}

/** A listening node on SQLite and a folder for agents' state, the CA chain written where agents read it; `clock`: the node's time. */
export async function startAgentNode(env: Readonly<Record<string, string>> = {}, options: { readonly clock?: Clock } = {}): Promise<AgentNode> {
  const t = await startTestNode('sqlite', { env, ...(options.clock && { clock: options.clock }) });
  const { mqttUrl, apiUrl } = await t.node.listen();
  const dir = await mkdtemp(join(tmpdir(), 'fw-agent-'));
  const caFile = join(dir, 'ca.pem');
  const caPem = t.node.hierarchy.chainPem;
  await writeFile(caFile, caPem);
  return {
    t,
    mqttUrl,
    apiUrl,
    caFile,
    caPem,
    dir,
    config: (thing, extra = {}) =>
      parseAgentConfig({ thing, mqttUrl, caFile, stateDir: join(dir, `state-${thing}`), reconnect: { initialMs: 50, maxMs: 2_000 }, metricsIntervalSeconds: 3_600, ...extra }, dir),
    async close() {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
