import { FleetwardError } from '@fleetward/protocol';
import { runFleet, simFailed, type Progress, type SimSummary } from '../sim/fleet-simulator.js';
import { NodeApi, nodeTargetFromEnvironment } from '../sim/node-api.js';
import { parseSimOptions, SIM_USAGE, type SimOptions } from '../sim/sim-options.js';

/**
 * `fleetward-sim`: a simulated fleet against the node named by FLEETWARD_URL / FLEETWARD_TOKEN /
 * FLEETWARD_HOME. A live progress line on stderr; the summary on stdout (JSON with --json).
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options: SimOptions;
  try {
    options = parseSimOptions(argv);
    const target = await nodeTargetFromEnvironment(env);
    const api = new NodeApi(target);
    const mqttUrl = options.mqttUrl ?? (await gatewayUrl(api, target.apiUrl));
    const summary = await runFleet(api, { caPem: target.caPem, mqttUrl }, options, progressLine(process.stderr.isTTY));
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (options.json) console.log(JSON.stringify(summary, null, 2));
    else {
      console.log(`devices ${summary.devices} (${summary.profile}), template ${summary.template}, ${summary.elapsedSeconds.toFixed(1)} s`);
      console.log(`provisioned ${summary.provisioned}  connected ${summary.connected}  published ${summary.published}  acknowledged ${summary.acknowledged}  refused ${summary.refused}  errors ${summary.errors}`);
      if (summary.connectSeconds !== null) console.log(`whole fleet online after ${summary.connectSeconds.toFixed(1)} s`);
      if (summary.malformed + summary.deferred > 0) console.log(`malformed readings refused on the devices ${summary.malformed}, deferred on low battery ${summary.deferred}`);
      for (const line of attackLines(summary.attacks)) console.log(line);
      const u = summary.updates;
      if (u.succeeded + u.failed + u.rejected + u.reboots > 0) console.log(`updates succeeded ${u.succeeded}  failed ${u.failed}  rejected ${u.rejected}  reboots ${u.reboots}`);
      for (const error of summary.firstErrors) console.log(`error: ${error}`);
    }
    return simFailed(summary) ? 1 : 0;
  } catch (error) {
    if (error instanceof FleetwardError) {
      console.error(`fleetward-sim: ${error.message} (${error.code})${error.code === 'FW_ERR_USAGE' ? `\n${SIM_USAGE}` : ''}`);
      return error.spec.exit;
    }
    console.error(`fleetward-sim: ${(error as Error).message}`);
    return 1;
  }
}

/** Per attack kind: attempts (and refusals), detections expected and raised, what was missed or skipped and why. */
function attackLines(attacks: SimSummary['attacks']): string[] {
  const kinds = Object.entries(attacks.byKind);
  if (kinds.length === 0) return [];
  const lines = [`attacks refused ${attacks.refused} of ${attacks.attempted}, detected ${attacks.detected} of ${attacks.expectedDetections}`];
  for (const [kind, k] of kinds) {
    if (k.skipped !== null) {
      lines.push(`  ${kind.padEnd(13)} skipped: ${k.skipped}`);
      continue;
    }
    const refused = k.refused === null ? '' : `, refused ${k.refused}`;
    const verdict = k.detected < k.expected ? `MISSED ${k.missed.join('; ')}` : 'ok';
    lines.push(`  ${kind.padEnd(13)} attempted ${k.attempted}${refused}, detected ${k.detected} of ${k.expected}  ${verdict}`);
  }
  if (attacks.unexpected.length > 0) lines.push(`  alerts on devices not attacked that way: ${attacks.unexpected.join('; ')}`);
  return lines;
}

/** The gateway's URL from the node's effective configuration: same host as the API, its MQTT port. */
async function gatewayUrl(api: NodeApi, apiUrl: string): Promise<string> {
  const { config } = await api.call<{ config: { mqtt?: { port?: number } } }>('GET', '/api/v1/config').catch((error: unknown) => {
    // The operator role cannot read the node's configuration (config:read is for admins and auditors).
    if (error instanceof FleetwardError && error.code === 'FW_ERR_FORBIDDEN') throw new FleetwardError('FW_ERR_USAGE', 'this token cannot read the node\'s configuration to find the gateway: pass --mqtt-url mqtts://HOST:PORT');
    throw error;
  });
  const port = config.mqtt?.port;
  if (typeof port !== 'number' || port === 0) throw new FleetwardError('FW_ERR_USAGE', 'the node\'s MQTT port is not known (port 0): pass --mqtt-url');
  return `mqtts://${new URL(apiUrl).hostname}:${port}`;
}

function progressLine(tty: boolean): (p: Progress) => void {
  let lastLine = 0;
  return (p) => {
    const line = `[sim] ${p.elapsedSeconds}s provisioned ${p.provisioned} connected ${p.connected} published ${p.published} acknowledged ${p.acknowledged} errors ${p.errors}`;
    if (tty) process.stderr.write(`\r${line}\u001b[K`);
    else if (Date.now() - lastLine >= 5_000) {
      lastLine = Date.now();
      process.stderr.write(`${line}\n`);
    }
  };
}

process.exitCode = await main(process.argv.slice(2), process.env);
