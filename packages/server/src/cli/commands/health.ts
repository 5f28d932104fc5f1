import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import type { ControlsReport } from '../../health/controls.js';
import { action, withJson } from '../action.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { withConnection } from '../target.js';

/**
 * `fleetward health`: runs the canaries now on the node at FLEETWARD_URL and prints each security
 * control, held or not, and when it was last checked; exits 1 if any control failed. The canaries
 * attack a running node's listeners, so without FLEETWARD_URL there is nothing to attack: the
 * command says so and exits 1 rather than starting listeners of its own.
 */
export function healthCommand(program: Command): void {
  withJson(withConfigFlags(program.command('health')))
    .description('run the canaries now against the running node (FLEETWARD_URL, FLEETWARD_TOKEN): each security control, held or not, when last checked; exit 1 if one failed')
    .option('--last', 'print the last scheduled report instead of running the canaries now (needs only fleet:read)')
    .action(
      action(async (out, options) => {
        if ((process.env.FLEETWARD_URL ?? '') === '') {
          throw new FleetwardError('FW_ERR_NOT_READY', 'no running node: the canaries attack a running node\'s listeners; set FLEETWARD_URL and FLEETWARD_TOKEN to reach it (`fleetward serve`)');
        }
        const report = await withConnection(options, async (connection) => {
          if (connection.kind !== 'remote') throw new FleetwardError('FW_ERR_NOT_READY', 'no running node');
          return options.last === true ? connection.client.call<ControlsReport>('GET', '/api/v1/health/controls') : connection.client.call<ControlsReport>('POST', '/api/v1/health/controls/run');
        });
        out.result(report, describe);
        if (!report.held) process.exitCode = 1;
      }),
    );
}

function describe(report: ControlsReport): string {
  if (report.checkedAt === null) return 'The canaries have not run yet.';
  const rows = report.controls.map((c) => [c.control, c.status, c.checkedAt, c.detail]);
  const failing = report.controls.filter((c) => c.status === 'not-held' || c.status === 'error').length;
  const summary = failing === 0 ? 'Every security control held.' : `${failing} security control(s) FAILED.`;
  return `${table(['control', 'status', 'last checked', 'detail'], rows)}\n\n${summary}`;
}
