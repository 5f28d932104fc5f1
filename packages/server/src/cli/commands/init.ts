import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import { action, withJson } from '../action.js';
import { configFrom, withConfigFlags } from '../config-flags.js';
import { writeOutputFile } from '../files.js';
import { apiUrl } from '../../config/settings.js';
import type { HierarchyOptions } from '../../identity/ca-hierarchy.js';
import { bootstrapTokenText } from './bootstrap-token.js';
import { ROOT_PASSPHRASE_ENV, rootPassphrase } from '../root-passphrase.js';

export function initCommand(program: Command): void {
  initOptions(program.command('init'));
}

/** `fleetward init` and its alias `fleetward ca init`. */
export function initOptions(command: Command): void {
  withJson(withConfigFlags(command))
    .description('create the data folder: key-encryption key, database, CA hierarchy, server certificate, bootstrap admin token')
    .option('--offline-root', `keep the root CA key offline: it is written once, encrypted with ${ROOT_PASSPHRASE_ENV}, to --root-key-out and never stored`)
    .option('--root-key-out <file>', 'with --offline-root: where to write the encrypted root key (created 0600, never overwritten)')
    .action(
      action(async (out, options) => {
        const { config } = configFrom(options);
        const hierarchy = await offlineRootOption(options);
        const { initialize } = await import('../../node.js');
        const report = await initialize(config, { hierarchy });
        out.result({ home: config.home, ...report, ...(hierarchy.offlineRoot && { rootKeyFile: String(options.rootKeyOut) }) }, (r) =>
          [
            r.initialized ? `Initialized ${r.home}` : `${r.home} was already initialized; nothing to do`,
            `  CA chain   ${r.caFile}`,
            ...(r.rootKeyFile !== undefined ? [`  root key   ${r.rootKeyFile} (encrypted; move it offline now, it is not kept here)`] : []),
            ...(r.bootstrapToken ? ['', bootstrapTokenText(r.bootstrapToken, apiUrl(config))] : []),
          ].join('\n'),
        );
      }),
    );
}

async function offlineRootOption(options: Record<string, unknown>): Promise<HierarchyOptions> {
  const file = typeof options.rootKeyOut === 'string' ? options.rootKeyOut : undefined;
  if (options.offlineRoot !== true) {
    if (file !== undefined) throw new FleetwardError('FW_ERR_USAGE', '--root-key-out goes with --offline-root');
    return {};
  }
  if (file === undefined) throw new FleetwardError('FW_ERR_USAGE', '--offline-root needs --root-key-out <file>: the root key is written there once and never again');
  const passphrase = rootPassphrase();
  // Refuse early; the exclusive create when the key is written is the real guard.
  if (await stat(file).then(() => true, () => false)) throw new FleetwardError('FW_ERR_USAGE', `${file} exists already; a root key is never overwritten`);
  return { offlineRoot: { passphrase, saveKey: (pem) => writeOutputFile(file, pem, 'secret') } };
}
