/**
 * A Fleetward node in its own process, so the benchmark measures its CPU and memory alone:
 * `node --import tsx bench/gateway/gateway-node.ts` (the built server, packages/server/dist), forked
 * with an IPC channel and the FLEETWARD_* environment of a provisioned data folder. It listens (API and MQTT on free ports), sends
 * `{ ready, port }`, then answers requests from the parent:
 *   { id, revoke: serial }  revokes the certificate; answers { id, startedNs } with the
 *                           process.hrtime clock (CLOCK_MONOTONIC: the same in every process) read
 *                           just before certificates.revoke() is called;
 *   { id, close: true }     closes the node (gracefully) and exits.
 */
import type * as LoadConfigModule from '../../packages/server/src/config/load-config.js';
import type * as NodeModule from '../../packages/server/src/node.js';

// The built node (`npm run bench` builds first), as users run it: loaded from the TypeScript sources,
// its worker threads (the SQLite telemetry writer) would compile them again when they start.
const built = (path: string): string => new URL(`../../packages/server/dist/${path}`, import.meta.url).href;
const { loadConfig } = (await import(built('config/load-config.js'))) as typeof LoadConfigModule;
const { buildNode, openHome } = (await import(built('node.js'))) as typeof NodeModule;

interface Request {
  readonly id: number;
  readonly revoke?: string;
  readonly close?: true;
}

const send = (message: unknown): void => void process.send?.(message);
const { config } = loadConfig({ env: process.env, flags: {} });
const { context } = await openHome(config, { create: false });
const node = await buildNode(context);
const { mqttUrl } = await node.listen();
send({ ready: true, port: Number(new URL(mqttUrl).port) });

process.on('message', (request: Request) => {
  const answer = async (): Promise<unknown> => {
    if (request.revoke !== undefined) {
      const startedNs = process.hrtime.bigint();
      await context.identity.certificates.revoke(request.revoke, 'keyCompromise', { name: 'bench' });
      return { startedNs: String(startedNs) };
    }
    await node.close();
    return { closed: true };
  };
  answer().then(
    (result) => {
      send({ id: request.id, ...(result as object) });
      if (request.close === true) process.disconnect();
    },
    (error: unknown) => send({ id: request.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('SIGTERM', () => process.exit(0));
