import type { Command } from 'commander';
import { homeExists, homeLayout, checkPrivate } from '../../config/home.js';
import { redactedConfig } from '../../config/load-config.js';
import { action, withJson } from '../action.js';
import { configFrom, withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';

export function configCommand(program: Command): void {
  const config = program.command('config').description('inspect the configuration');
  withJson(withConfigFlags(config.command('check')))
    .description('validate the configuration and print the effective values, secrets redacted (exit 2 if invalid)')
    .action(
      action(async (out, options) => {
        const loaded = configFrom(options);
        const layout = homeLayout(loaded.config.home);
        // The same data folder check `serve` makes, so a bad mode shows up here first.
        if (await homeExists(layout)) await checkPrivate(layout.root, 'data folder');
        const values = redactedConfig(loaded.config);
        out.result({ valid: true, configFile: loaded.configFile, config: values, sources: loaded.sources }, (r) =>
          [
            `Configuration is valid${r.configFile ? ` (file ${r.configFile})` : ''}`,
            table(
              ['key', 'value', 'from'],
              Object.entries(r.config).map(([key, value]) => [key, JSON.stringify(value), r.sources[key] ?? 'default']),
            ),
          ].join('\n'),
        );
      }),
    );
}
