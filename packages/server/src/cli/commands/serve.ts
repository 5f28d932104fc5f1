import type { Command } from 'commander';
import type { IssuedToken } from '../../access/operators.js';
import { VERSION } from '../../version.js';
import { action, withJson } from '../action.js';
import { configFrom, withConfigFlags } from '../config-flags.js';
import { bootstrapTokenText } from './bootstrap-token.js';

/** How long a stopping node waits for requests in flight before it exits anyway. */
const DRAIN_TIMEOUT_MS = 10_000;

export function serveCommand(program: Command): void {
  withJson(withConfigFlags(program.command('serve')))
    .description('run a node: the HTTPS operator API and the MQTT device gateway (creates the data folder on first start)')
    .action(
      action(async (out, options) => {
        const { config } = configFrom(options);
        const { buildNode, closeContext, openHome } = await import('../../node.js');
        const { context, report } = await openHome(config, { create: true });
        const node = await buildNode(context).catch(async (error: unknown) => {
          await closeContext(context);
          throw error;
        });
        let listening: { apiUrl: string; mqttUrl: string; mqttWebSocketUrl: string | null };
        try {
          listening = await node.listen();
        } catch (error) {
          await node.close();
          throw error;
        }
        const ready = {
          event: 'ready',
          version: VERSION,
          apiUrl: listening.apiUrl,
          mqttUrl: listening.mqttUrl,
          mqttWebSocketUrl: listening.mqttWebSocketUrl,
          caFile: context.layout.caFile,
          home: config.home,
          store: context.store.dialect,
          bootstrapToken: report.bootstrapToken,
        };
        // Listening for the signals before saying "ready": whoever waits for that line may stop us at once.
        const stopped = stopOnSignal(async () => {
          await node.close();
          context.logger.flush();
        });
        if (out.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
        else process.stderr.write(`${banner(ready)}\n`);
        await stopped;
      }),
    );
}

function banner(ready: { apiUrl: string; mqttUrl: string; mqttWebSocketUrl: string | null; caFile: string; home: string; store: string; bootstrapToken: IssuedToken | null }): string {
  return [
    `Fleetward ${VERSION} is running`,
    `  API        ${ready.apiUrl}   (OpenAPI: ${ready.apiUrl}/api/openapi.json)`,
    `  MQTT       ${ready.mqttUrl}   (devices: MQTT 3.1.1 and 5.0 with their client certificate)`,
    ...(ready.mqttWebSocketUrl === null ? [] : [`  MQTT/WSS   ${ready.mqttWebSocketUrl}`]),
    `  CA chain   ${ready.caFile}`,
    `  Data       ${ready.home} (${ready.store})`,
    '',
    `  Check it:  curl --cacert ${ready.caFile} ${ready.apiUrl}/readyz`,
    ...(ready.bootstrapToken ? ['', bootstrapTokenText(ready.bootstrapToken, ready.apiUrl)] : []),
  ].join('\n');
}

/** Resolves once the node has stopped after SIGTERM or SIGINT; a second signal exits at once. */
function stopOnSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`${signal} again: exiting without draining\n`);
        process.exit(1);
      }
      stopping = true;
      process.stderr.write(`${signal}: draining and stopping\n`);
      const force = setTimeout(() => {
        process.stderr.write(`requests still in flight after ${DRAIN_TIMEOUT_MS} ms: exiting\n`);
        process.exit(1);
      }, DRAIN_TIMEOUT_MS);
      force.unref();
      stop().then(() => {
        clearTimeout(force);
        resolve();
      }, reject);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
