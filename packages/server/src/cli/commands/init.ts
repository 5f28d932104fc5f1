import type { Command } from 'commander';
import { action, withJson } from '../action.js';
import { configFrom, withConfigFlags } from '../config-flags.js';
import { apiUrl } from '../../config/settings.js';
import { bootstrapTokenText } from './bootstrap-token.js';

export function initCommand(program: Command): void {
  withJson(withConfigFlags(program.command('init')))
    .description('create the data folder: key-encryption key, database, CA hierarchy, server certificate, bootstrap admin token')
    .action(
      action(async (out, options) => {
        const { config } = configFrom(options);
        const { initialize } = await import('../../node.js');
        const report = await initialize(config);
        out.result({ home: config.home, ...report }, (r) =>
          [
            r.initialized ? `Initialized ${r.home}` : `${r.home} was already initialized; nothing to do`,
            `  CA chain   ${r.caFile}`,
            ...(r.bootstrapToken ? ['', bootstrapTokenText(r.bootstrapToken, apiUrl(config))] : []),
          ].join('\n'),
        );
      }),
    );
}
