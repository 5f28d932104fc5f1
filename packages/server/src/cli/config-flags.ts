import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../config/load-config.js';
import { flattenSettings } from '../config/settings.js';

/** Adds the configuration flags (`--home`, `--api-port`, ...) from the settings table to a command. */
export function withConfigFlags(command: Command): Command {
  for (const { key, spec } of flattenSettings()) {
    if (spec.flag !== undefined) command.option(`--${spec.flag} <value>`, `${spec.description} [${spec.env}, config key ${key}]`);
  }
  return command;
}

/** Loads the configuration with this command's flags on top of file and environment. */
export function configFrom(options: Record<string, unknown>): LoadedConfig {
  const flags: Record<string, string | undefined> = {};
  for (const { spec } of flattenSettings()) {
    if (spec.flag === undefined) continue;
    const value = options[camelCase(spec.flag)];
    if (typeof value === 'string') flags[spec.flag] = value;
  }
  return loadConfig({ flags });
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}
