import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactedConfig } from '../../src/config/load-config.js';
import { flattenSettings } from '../../src/config/settings.js';
import { refusalOf } from '../helpers/refusals.js';

async function homeWithFile(content: string): Promise<string> {
  const home = join(await mkdtemp(join(tmpdir(), 'fw-config-')), 'home');
  await mkdir(home, { mode: 0o700 });
  await writeFile(join(home, 'fleetward.json'), content);
  return home;
}

describe('configuration', () => {
  it('secure defaults: loopback listener, TLS 1.2 minimum, SQLite in ./.fleetward', () => {
    const { config } = loadConfig({ env: {}, cwd: '/srv/app' });
    expect(config.host).toBe('127.0.0.1');
    expect(config.tls.minVersion).toBe('TLSv1.2');
    expect(config.api.port).toBe(8443);
    expect(config.mqtt.port).toBe(8883);
    expect(config.database.url).toBeNull();
    expect(config.home).toBe('/srv/app/.fleetward');
  });

  it('precedence is defaults < config file < environment < flags, and each value names its source', async () => {
    const home = await homeWithFile(JSON.stringify({ api: { port: 9001 }, mqtt: { port: 9002 }, log: { level: 'warn' } }));
    const loaded = loadConfig({ env: { FLEETWARD_HOME: home, FLEETWARD_MQTT_PORT: '9102', FLEETWARD_LOG_LEVEL: 'error' }, flags: { 'log-level': 'debug' } });
    expect(loaded.config.api.port).toBe(9001);
    expect(loaded.config.mqtt.port).toBe(9102);
    expect(loaded.config.log.level).toBe('debug');
    expect(loaded.config.tls.minVersion).toBe('TLSv1.2');
    expect(loaded.sources['api.port']).toBe(`file ${join(home, 'fleetward.json')}`);
    expect(loaded.sources['mqtt.port']).toBe('env FLEETWARD_MQTT_PORT');
    expect(loaded.sources['log.level']).toBe('flag --log-level');
    expect(loaded.sources['tls.minVersion']).toBe('default');
  });

  it('an invalid value is refused naming the key, the value, its source and what is expected (exit 2)', () => {
    const error = refusalOf(() => loadConfig({ env: { FLEETWARD_API_PORT: '84x3' } }));
    expect(error.code).toBe('FW_ERR_CONFIG_INVALID');
    expect(error.spec.exit).toBe(2);
    expect(error.details.problems).toEqual([{ key: 'api.port', value: '84x3', source: 'env FLEETWARD_API_PORT', expected: 'an integer port between 0 and 65535' }]);
    expect(error.message).toContain('api.port = "84x3"');
  });

  it('reports every problem at once', () => {
    const error = refusalOf(() => loadConfig({ env: { FLEETWARD_API_PORT: '70000', FLEETWARD_TLS_MIN_VERSION: 'TLSv1.0', FLEETWARD_HOST: 'bad host!' } }));
    expect((error.details.problems as { key: string }[]).map((p) => p.key).sort()).toEqual(['api.port', 'host', 'tls.minVersion']);
  });

  it('cannot be configured below TLS 1.2', () => {
    for (const version of ['TLSv1', 'TLSv1.1', 'SSLv3']) {
      expect(refusalOf(() => loadConfig({ env: { FLEETWARD_TLS_MIN_VERSION: version } })).code).toBe('FW_ERR_CONFIG_INVALID');
    }
    expect(loadConfig({ env: { FLEETWARD_TLS_MIN_VERSION: 'TLSv1.3' } }).config.tls.minVersion).toBe('TLSv1.3');
  });

  it('keeps TLS session tickets within what TLS 1.3 allows (a week), 0 turning them off', () => {
    for (const hours of ['169', '-1', '1.5', 'a day']) {
      expect(refusalOf(() => loadConfig({ env: { FLEETWARD_TLS_SESSION_RESUMPTION_HOURS: hours } })).code).toBe('FW_ERR_CONFIG_INVALID');
    }
    expect(loadConfig({ env: {} }).config.tls.sessionResumptionHours).toBe(24);
    expect(loadConfig({ env: { FLEETWARD_TLS_SESSION_RESUMPTION_HOURS: '0' } }).config.tls.sessionResumptionHours).toBe(0);
  });

  it('refuses unknown keys in the file and unknown FLEETWARD_ variables (a typo must not pass silently)', async () => {
    const home = await homeWithFile(JSON.stringify({ api: { prot: 1 } }));
    const fileError = refusalOf(() => loadConfig({ env: { FLEETWARD_HOME: home } }));
    expect(fileError.details.problems).toMatchObject([{ key: 'api.prot' }]);
    const envError = refusalOf(() => loadConfig({ env: { FLEETWARD_API_PROT: '1' } }));
    expect(envError.details.problems).toMatchObject([{ key: 'FLEETWARD_API_PROT' }]);
    // Variables the CLI client reads are not configuration, and not refused.
    expect(() => loadConfig({ env: { FLEETWARD_URL: 'https://x', FLEETWARD_TOKEN: 't', FLEETWARD_CA_FILE: '/x' } })).not.toThrow();
  });

  it('refuses a config file that is not JSON, not an object, has wrong types, or sets the data folder', async () => {
    for (const content of ['{ "api": ', '[1,2]', JSON.stringify({ api: { port: '8443' } }), JSON.stringify({ home: '/elsewhere' }), JSON.stringify({ tls: { hostnames: [1] } })]) {
      const home = await homeWithFile(content);
      expect(refusalOf(() => loadConfig({ env: { FLEETWARD_HOME: home } })).code).toBe('FW_ERR_CONFIG_INVALID');
    }
  });

  it('accepts host lists from the environment or the file, normalized', async () => {
    expect(loadConfig({ env: { FLEETWARD_TLS_HOSTNAMES: 'Fleet.Example.com, 10.0.0.5,0:0:0:0:0:0:0:1' } }).config.tls.hostnames).toEqual(['fleet.example.com', '10.0.0.5', '::1']);
    const home = await homeWithFile(JSON.stringify({ tls: { hostnames: ['a.example', '192.0.2.1'] } }));
    expect(loadConfig({ env: { FLEETWARD_HOME: home } }).config.tls.hostnames).toEqual(['a.example', '192.0.2.1']);
    expect(refusalOf(() => loadConfig({ env: { FLEETWARD_TLS_HOSTNAMES: 'ok.example,not a host' } })).code).toBe('FW_ERR_CONFIG_INVALID');
  });

  it('accepts only postgres URLs for the database, and never prints the password', () => {
    expect(refusalOf(() => loadConfig({ env: { FLEETWARD_DATABASE_URL: 'mysql://u:p@h/db' } })).code).toBe('FW_ERR_CONFIG_INVALID');
    const invalid = refusalOf(() => loadConfig({ env: { FLEETWARD_DATABASE_URL: 'https://u:hunter2@h/db' } }));
    expect(invalid.message).not.toContain('hunter2');
    const { config } = loadConfig({ env: { FLEETWARD_DATABASE_URL: 'postgres://fleet:hunter2@db.internal:5432/fleet' } });
    expect(config.database.url).toBe('postgres://fleet:hunter2@db.internal:5432/fleet');
    const printed = JSON.stringify(redactedConfig(config));
    expect(printed).not.toContain('hunter2');
    expect(printed).toContain('postgres://fleet:***@db.internal:5432/fleet');
  });

  it('every setting has an environment variable in the FLEETWARD_ namespace, a description and a valid default', () => {
    const envs = new Set<string>();
    for (const { key, spec } of flattenSettings()) {
      expect(spec.env, key).toMatch(/^FLEETWARD_[A-Z0-9_]+$/);
      expect(envs.has(spec.env), `${spec.env} used twice`).toBe(false);
      envs.add(spec.env);
      expect(spec.description.length, key).toBeGreaterThan(10);
      if (spec.default !== null && key !== 'home') expect(spec.parse(spec.default), key).toEqual(spec.default);
    }
  });

  it('integer settings accept exactly the integers in range (property)', () => {
    const port = flattenSettings().find((s) => s.key === 'api.port')?.spec;
    if (!port) throw new Error('api.port is missing');
    fc.assert(
      fc.property(fc.integer({ min: -100_000, max: 200_000 }), (n) => {
        const parsed = port.parse(String(n));
        expect(parsed).toBe(n >= 0 && n <= 65535 ? n : undefined);
      }),
    );
    fc.assert(fc.property(fc.string().filter((s) => !/^\s*-?\d+\s*$/.test(s)), (s) => port.parse(s) === undefined));
  });
});
