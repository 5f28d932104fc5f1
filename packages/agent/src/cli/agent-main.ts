import { parseArgs } from 'node:util';
import { FleetwardError } from '@fleetward/protocol';
import { FleetwardAgent, type AgentEvent } from '../agent.js';
import { loadAgentConfig } from '../config/agent-config.js';
import { REBOOT_EXIT_CODE } from '../updates/reboot-exit-code.js';

const USAGE = 'usage: fleetward-agent --config agent.json';

/**
 * The daemon: one agent for this device, events as JSON lines on stdout (never a key or token).
 * Exit codes follow the error registry: 2 for a configuration or credential problem an operator
 * must fix (systemd: RestartPreventExitStatus=2, so a broken device does not restart in a loop),
 * 1 for a failure worth retrying later, REBOOT_EXIT_CODE (75) when an update (or its rollback)
 * needs the device restarted into another slot: systemd's Restart=on-failure starts it again.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let configFile: string | undefined;
  try {
    configFile = parseArgs({ args: [...argv], options: { config: { type: 'string', short: 'c' } }, strict: true }).values.config;
  } catch (error) {
    console.error(`fleetward-agent: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (configFile === undefined) {
    console.error(USAGE);
    return 2;
  }
  let agent: FleetwardAgent;
  let reboot: (() => void) | null = null;
  const rebooting = new Promise<'reboot'>((resolve) => (reboot = () => resolve('reboot')));
  try {
    const config = await loadAgentConfig(configFile);
    agent = await FleetwardAgent.start(config, { onEvent: logEvent, reboot: () => reboot?.() });
  } catch (error) {
    if (error instanceof FleetwardError) {
      console.error(`fleetward-agent: ${error.message} (${error.code})`);
      return error.spec.exit;
    }
    console.error(`fleetward-agent: ${(error as Error).message}`);
    return 1;
  }
  logEvent({ type: 'started', thing: agent.thing, serial: agent.status().serial });
  const signalled = new Promise<'stop'>((resolve) => {
    process.once('SIGTERM', () => resolve('stop'));
    process.once('SIGINT', () => resolve('stop'));
  });
  const why = await Promise.race([signalled, rebooting]);
  if (why === 'reboot') {
    // The step already sits in the queue on disk; a moment to deliver it before the restart, then it goes with the next connection.
    await agent.drained(2_000);
    await agent.stop();
    logEvent({ type: 'restarting', exitCode: REBOOT_EXIT_CODE });
    return REBOOT_EXIT_CODE;
  }
  await agent.stop();
  return 0;
}

function logEvent(event: AgentEvent | { readonly type: 'started'; readonly thing: string; readonly serial: string } | { readonly type: 'restarting'; readonly exitCode: number }): void {
  console.log(JSON.stringify({ at: new Date().toISOString(), ...event }));
}

process.exitCode = await main(process.argv.slice(2));
