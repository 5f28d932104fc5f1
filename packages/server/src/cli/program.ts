import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { auditCommand } from './commands/audit.js';
import { caCommand } from './commands/ca.js';
import { templatesCommand } from './commands/templates.js';
import { certsCommand } from './commands/certs.js';
import { groupsCommand } from './commands/groups.js';
import { thingTypesCommand } from './commands/thing-types.js';
import { thingsCommand } from './commands/things.js';
import { configCommand } from './commands/config.js';
import { initCommand } from './commands/init.js';
import { kekCommand } from './commands/kek.js';
import { operatorCommand } from './commands/operator.js';
import { policiesCommand } from './commands/policies.js';
import { serveCommand } from './commands/serve.js';
import { dataCommand } from './commands/data.js';
import { bansCommand } from './commands/bans.js';
import { healthCommand } from './commands/health.js';
import { alertsCommand, notifyCommand, respondCommand } from './commands/alerts.js';
import { monitorCommand } from './commands/monitor.js';
import { deployCommand } from './commands/deploy.js';
import { firmwareCommand } from './commands/firmware.js';

export function buildProgram(): Command {
  const program = new Command('fleetward')
    .description('Fleetward: secure-by-default IoT fleet platform')
    .version(VERSION)
    // Program options come before the command, so `firmware add --version 1.4.2` is the artifact's version.
    .enablePositionalOptions()
    // Usage errors throw instead of exiting, so they can be given exit code 2.
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  initCommand(program);
  serveCommand(program);
  configCommand(program);
  operatorCommand(program);
  thingsCommand(program);
  thingTypesCommand(program);
  groupsCommand(program);
  certsCommand(program);
  templatesCommand(program);
  policiesCommand(program);
  bansCommand(program);
  healthCommand(program);
  monitorCommand(program);
  alertsCommand(program);
  respondCommand(program);
  notifyCommand(program);
  caCommand(program);
  auditCommand(program);
  kekCommand(program);
  dataCommand(program);
  firmwareCommand(program);
  deployCommand(program);
  return program;
}

/** Runs the CLI and returns its exit code: 0 success, 1 refused or failed, 2 bad usage or input. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help' ? 0 : 2;
    }
    throw error;
  }
}
