import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import { parseThrottleSettings } from '../access/throttling/throttle-settings.js';
import { CLIENT_ENVIRONMENT, flattenSettings, settings, type Config, type FlatSetting } from './settings.js';

export const CONFIG_FILE_NAME = 'fleetward.json';

/** Where each effective value came from, for `config check`. */
export type ValueSource = 'default' | `file ${string}` | `env ${string}` | `flag --${string}`;

export interface LoadedConfig {
  readonly config: Config;
  readonly sources: Readonly<Record<string, ValueSource>>;
  readonly configFile: string | null;
}

export interface ConfigInputs {
  /** Values of config flags, keyed by flag name (`api-port`). */
  readonly flags?: Readonly<Record<string, string | undefined>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

interface Problem {
  readonly key: string;
  readonly value: unknown;
  readonly source: string;
  readonly expected: string;
}

/**
 * Builds the one validated Config: defaults < `$FLEETWARD_HOME/fleetward.json` < environment
 * (`FLEETWARD_*`) < flags. Every invalid or unknown key is reported at once, each naming the key,
 * the value and what is expected; nothing starts on a partly valid configuration.
 */
export function loadConfig(inputs: ConfigInputs = {}): LoadedConfig {
  const env = inputs.env ?? process.env;
  const flags = inputs.flags ?? {};
  const cwd = inputs.cwd ?? process.cwd();
  const table = flattenSettings();
  const problems: Problem[] = [];
  const values = new Map<string, unknown>();
  const sources: Record<string, ValueSource> = {};

  const accept = (entry: FlatSetting, raw: unknown, source: ValueSource): void => {
    // Text sources (environment, flags) hold strings; the config file is typed JSON and must use the value's own type.
    const parsed = source.startsWith('file ') && !hasJsonTypeOf(raw, entry.spec.default) ? undefined : entry.spec.parse(raw);
    if (parsed === undefined) {
      problems.push({ key: entry.key, value: entry.spec.redact ? '(hidden)' : raw, source, expected: entry.spec.expected });
      return;
    }
    values.set(entry.key, parsed);
    sources[entry.key] = source;
  };

  for (const entry of table) {
    values.set(entry.key, entry.spec.default);
    sources[entry.key] = 'default';
  }

  // The data folder comes first: it is where the config file is.
  const homeEntry = table.find((e) => e.key === 'home') as FlatSetting;
  const homeFlag = flags.home;
  const homeRaw = homeFlag ?? env[settings.home.env];
  if (homeRaw !== undefined) accept(homeEntry, homeRaw, homeFlag !== undefined ? 'flag --home' : `env ${settings.home.env}`);
  const home = resolveHome(String(values.get('home')), cwd);
  values.set('home', home);

  const configFile = join(home, CONFIG_FILE_NAME);
  const fileValues = readConfigFile(configFile, problems);
  for (const [key, raw] of fileValues) {
    const entry = table.find((e) => e.key === key);
    if (!entry) problems.push({ key, value: raw, source: `file ${configFile}`, expected: 'a known configuration key (see docs/configuration.md)' });
    else if (key === 'home') problems.push({ key, value: raw, source: `file ${configFile}`, expected: 'no value here: the data folder is chosen by FLEETWARD_HOME or --home' });
    else accept(entry, raw, `file ${configFile}`);
  }

  const knownEnv = new Set<string>([...table.map((e) => e.spec.env), ...CLIENT_ENVIRONMENT]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('FLEETWARD_') && !knownEnv.has(name)) {
      problems.push({ key: name, value: env[name], source: `env ${name}`, expected: 'a known FLEETWARD_* variable (see docs/configuration.md)' });
    }
  }
  for (const entry of table) {
    if (entry.key === 'home') continue;
    const fromEnv = env[entry.spec.env];
    if (fromEnv !== undefined) accept(entry, fromEnv, `env ${entry.spec.env}`);
    const fromFlag = entry.spec.flag === undefined ? undefined : flags[entry.spec.flag];
    if (fromFlag !== undefined) accept(entry, fromFlag, `flag --${entry.spec.flag}`);
  }

  if (problems.length > 0) throw invalidConfiguration(problems);
  const config = nest(settings, values, '') as Config;
  checkLimits(config, sources);
  return { config, sources, configFile: fileValues.size > 0 ? configFile : null };
}

/** Limits that are each valid may still contradict each other (a burst smaller than the largest payload). */
function checkLimits(config: Config, sources: Readonly<Record<string, ValueSource>>): void {
  try {
    parseThrottleSettings(config.limits);
  } catch (error) {
    if (!(error instanceof FleetwardError)) throw error;
    const key = typeof error.details.key === 'string' ? error.details.key : 'limits';
    const value = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], config);
    throw invalidConfiguration([{ key, value, source: sources[key] ?? 'default', expected: typeof error.details.expected === 'string' ? error.details.expected : error.message }]);
  }
}

function resolveHome(home: string, cwd: string): string {
  return isAbsolute(home) ? home : resolve(cwd, home);
}

function readConfigFile(path: string, problems: Problem[]): Map<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    problems.push({ key: '(file)', value: path, source: `file ${path}`, expected: `a readable file (${(error as Error).message})` });
    return new Map();
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    problems.push({ key: '(file)', value: path, source: `file ${path}`, expected: `valid JSON (${(error as Error).message})` });
    return new Map();
  }
  if (!isPlainObject(document)) {
    problems.push({ key: '(file)', value: path, source: `file ${path}`, expected: 'a JSON object' });
    return new Map();
  }
  const flat = new Map<string, unknown>();
  flattenDocument(document, '', flat);
  return flat;
}

/** `{"api":{"port":1}}` → `api.port = 1`; stops at values that are not objects (lists stay whole). */
function flattenDocument(node: Record<string, unknown>, prefix: string, out: Map<string, unknown>): void {
  for (const [name, value] of Object.entries(node)) {
    const key = prefix + name;
    if (isPlainObject(value) && isGroup(key)) flattenDocument(value, `${key}.`, out);
    else out.set(key, value);
  }
}

function isGroup(key: string): boolean {
  let node: object = settings;
  for (const part of key.split('.')) {
    const next = (node as Record<string, unknown>)[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) return false;
    node = next;
  }
  return !('env' in node);
}

function nest(tree: object, values: ReadonlyMap<string, unknown>, prefix: string): object {
  return Object.freeze(
    Object.fromEntries(
      Object.entries(tree).map(([name, value]: [string, object]) => {
        const key = prefix + name;
        return [name, 'env' in value ? values.get(key) : nest(value, values, `${key}.`)];
      }),
    ),
  );
}

function hasJsonTypeOf(value: unknown, example: unknown): boolean {
  if (Array.isArray(example)) return Array.isArray(value);
  if (example === null) return value === null || typeof value === 'string';
  return typeof value === typeof example;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidConfiguration(problems: readonly Problem[]): FleetwardError {
  const lines = problems.map((p) => `  ${p.key} = ${JSON.stringify(p.value)} (from ${p.source}): expected ${p.expected}`);
  return new FleetwardError('FW_ERR_CONFIG_INVALID', `invalid configuration:\n${lines.join('\n')}`, {
    problems: problems.map((p) => ({ key: p.key, value: p.value, source: p.source, expected: p.expected })),
  });
}

/** The effective configuration as printable data, with secrets redacted. */
export function redactedConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, spec } of flattenSettings()) {
    const value = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);
    out[key] = spec.redact ? spec.redact(value) : value;
  }
  return out;
}
