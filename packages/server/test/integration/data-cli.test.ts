import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { openDataServices } from '../../src/data/data-services.js';
import { closeContext, initialize, openLocal } from '../../src/node.js';
import { testEnvironment, type TestEnvironment } from '../helpers/environment.js';

const CONTRACT = {
  name: 'thermostat',
  version: 1,
  topic: 'home/${thing.name}/climate',
  retention: 'P90D',
  schema: { type: 'object', required: ['temp'], properties: { temp: { type: 'number' }, occupant: { type: 'string', maxLength: 40 }, setpoint: { type: 'number' } } },
  fields: {
    temp: { class: 'internal', purposes: ['comfort'] },
    setpoint: { class: 'internal', purposes: ['comfort', 'energy'] },
    occupant: { class: 'personal', purposes: ['billing'], transform: 'tokenize' },
  },
};

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly json: unknown;
}

/** Runs the CLI in this process (local mode on the test's data folder), capturing its output. */
async function fleetward(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  process.exitCode = undefined;
  try {
    const code = await runCli(['node', 'fleetward', ...args]);
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch {
      json = undefined;
    }
    return { code, stdout, stderr, json };
  } finally {
    process.exitCode = undefined;
    out.mockRestore();
    err.mockRestore();
  }
}

describe('fleetward data (CLI, local data folder)', () => {
  let env: TestEnvironment;
  let dir: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    env = await testEnvironment('sqlite');
    for (const key of Object.keys(process.env)) if (key.startsWith('FLEETWARD_')) delete process.env[key];
    Object.assign(process.env, env.env);
    await initialize(env.config());
    dir = await mkdtemp(join(tmpdir(), 'fw-contracts-'));
    await writeFile(join(dir, 'thermostat.json'), JSON.stringify(CONTRACT, null, 2));
    await writeFile(join(dir, 'README.md'), 'not a contract');
  });
  afterAll(async () => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    await env.cleanup();
  });

  it('applies a folder of contracts, lists and shows them', async () => {
    const applied = await fleetward('data', 'contracts', 'apply', dir, '--json');
    expect(applied).toMatchObject({ code: 0, json: { applied: [{ name: 'thermostat', version: 1, outcome: 'created' }] } });
    expect((await fleetward('data', 'contracts', 'apply', dir)).stdout).toContain('unchanged');
    expect((await fleetward('data', 'contracts', 'list')).stdout).toMatch(/thermostat\s+1\s+\*\s+home\/\$\{thing.name\}\/climate\s+3/);
    expect(JSON.parse((await fleetward('data', 'contracts', 'show', 'thermostat')).stdout)).toEqual(CONTRACT);
  });

  it('refuses an invalid contract (exit 2, stable code) and stores nothing', async () => {
    const bad = await mkdtemp(join(tmpdir(), 'fw-bad-'));
    await writeFile(join(bad, 'a.json'), JSON.stringify({ ...CONTRACT, name: 'other', fields: { temp: { class: 'internal', purposes: ['comfort'] } } }));
    expect(await fleetward('data', 'contracts', 'apply', bad, '--json')).toMatchObject({ code: 2, json: { error: { code: 'FW_ERR_DATA_CONTRACT_INVALID' } } });
    await writeFile(join(bad, 'a.json'), '{ not json');
    const notJson = await fleetward('data', 'contracts', 'apply', bad);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('FW_ERR_DATA_CONTRACT_INVALID');
    expect((await fleetward('data', 'contracts', 'list', '--json')).json).toMatchObject({ contracts: [{ name: 'thermostat' }] });
  });

  it('queries for a purpose, detokenizes, prints the inventory, and purges with the count', async () => {
    const context = await openLocal(env.config());
    try {
      const data = await openDataServices({ store: context.store, audit: context.audit, clock: context.clock, keyRing: context.keyRing });
      for (const occupant of ['Ann', 'Ann', 'Bo']) data.ingest.inspect({ thing: 'th-1', thingType: null, topic: 'home/th-1/climate', payload: Buffer.from(JSON.stringify({ temp: 20, setpoint: 21, occupant })), receivedAtMs: Date.now() });
      await data.flush();
    } finally {
      await closeContext(context);
    }
    expect(await fleetward('data', 'query', '--thing', 'th-1', '--json')).toMatchObject({ code: 2, json: { error: { code: 'FW_ERR_PURPOSE_REQUIRED' } } });
    const energy = await fleetward('data', 'query', '--thing', 'th-1', '--purpose', 'energy', '--json');
    expect(energy.code).toBe(0);
    expect(energy.json).toMatchObject({ purpose: 'energy', withheld: ['occupant', 'temp'] });
    expect((energy.json as { rows: { fields: unknown }[] }).rows.map((r) => r.fields)).toEqual([{ setpoint: 21 }, { setpoint: 21 }, { setpoint: 21 }]);
    const billing = await fleetward('data', 'query', '--thing', 'th-1', '--purpose', 'billing', '--json');
    const tokens = (billing.json as { rows: { fields: { occupant: string } }[] }).rows.map((r) => r.fields.occupant);
    expect(new Set(tokens).size).toBe(2);
    const shown = await fleetward('data', 'detokenize', tokens[2] as string, '--purpose', 'billing');
    expect(shown).toMatchObject({ code: 0 });
    expect(shown.stdout).toContain('"Ann"');
    expect((await fleetward('data', 'detokenize', tokens[2] as string, '--json')).json).toMatchObject({ error: { code: 'FW_ERR_PURPOSE_REQUIRED' } });

    const inventory = await fleetward('data', 'inventory');
    expect(inventory.code).toBe(0);
    expect(inventory.stdout).toContain('# Fleetward data inventory');
    expect(inventory.stdout).toContain('| `occupant` | personal | billing | tokenize | 90 d | telemetry store (SQLite) + token vault (sealed) |');
    expect((await fleetward('data', 'inventory', '--json')).json).toMatchObject({ contracts: [{ contract: 'thermostat' }] });

    const purge = await fleetward('data', 'purge', '--thing', 'th-1');
    expect(purge).toMatchObject({ code: 0, stdout: 'Erased 3 stored row(s) and 2 token vault entries of th-1.\n' });
    expect((await fleetward('data', 'query', '--thing', 'th-1', '--purpose', 'energy', '--json')).json).toMatchObject({ rows: [] });
    expect((await fleetward('audit', 'events', '--json', '--action', 'data.purge')).stdout).toContain('"rows\\":3');
  });

  it('creates, lists, shows and deletes a data webhook consumer; refuses http://, no purpose and an unknown role (exit 2)', async () => {
    const url = 'https://127.0.0.1:9/hooks/fleetward';
    const created = await fleetward('data', 'webhooks', 'create', 'energy-feed', url, '--purpose', 'energy', '--role', 'operator', '--contract', 'thermostat', '--json');
    expect(created).toMatchObject({ code: 0, json: { webhook: { name: 'energy-feed', url, contract: 'thermostat', purpose: 'energy', role: 'operator', state: 'active', pending: null } } });
    const secret = (created.json as { secret: string }).secret;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const human = await fleetward('data', 'webhooks', 'create', 'comfort-feed', url, '--purpose', 'comfort', '--role', 'viewer', '--topic', 'home/+/climate');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Created data webhook comfort-feed → https:\/\/127\.0\.0\.1:9\/hooks\/fleetward \(topic home\/\+\/climate, purpose comfort, role viewer\)\nSigning secret \(shown once\): [A-Za-z0-9_-]{43}\n$/);

    const refusals: [string[], string][] = [
      [['http-feed', 'http://127.0.0.1:9/hooks', '--purpose', 'energy', '--role', 'operator'], 'FW_ERR_VALIDATION'],
      [['no-purpose', url, '--role', 'operator'], 'FW_ERR_PURPOSE_REQUIRED'],
      [['bad-role', url, '--purpose', 'energy', '--role', 'superuser'], 'FW_ERR_VALIDATION'],
    ];
    for (const [args, code] of refusals) expect(await fleetward('data', 'webhooks', 'create', ...args, '--json')).toMatchObject({ code: 2, json: { error: { code } } });

    const list = await fleetward('data', 'webhooks', 'list');
    expect(list.stdout).toMatch(/comfort-feed\s+https:\/\/127\.0\.0\.1:9\/hooks\/fleetward\s+topic home\/\+\/climate\s+comfort\s+viewer\s+active\s+0\s+-/);
    expect(list.stdout).toMatch(/energy-feed\s+https:\/\/127\.0\.0\.1:9\/hooks\/fleetward\s+contract thermostat\s+energy\s+operator\s+active\s+0\s+-/);
    const listed = await fleetward('data', 'webhooks', 'list', '--json');
    expect((listed.json as { webhooks: { name: string }[] }).webhooks.map((w) => w.name)).toEqual(['comfort-feed', 'energy-feed']);
    expect(listed.stdout).not.toContain(secret);
    expect((await fleetward('data', 'webhooks', 'show', 'energy-feed')).stdout).toContain('selects contract thermostat; purpose energy; role operator');

    expect(await fleetward('data', 'webhooks', 'delete', 'energy-feed')).toMatchObject({ code: 0, stdout: 'Deleted data webhook energy-feed.\n' });
    expect(await fleetward('data', 'webhooks', 'delete', 'energy-feed', '--json')).toMatchObject({ code: 1, json: { error: { code: 'FW_ERR_NOT_FOUND' } } });
    expect((await fleetward('data', 'webhooks', 'list', '--json')).json).toMatchObject({ webhooks: [{ name: 'comfort-feed' }] });
    const trail = (await fleetward('audit', 'events', '--json', '--action', 'data.webhook.delete')).stdout;
    expect(trail).toContain('data-webhook:energy-feed');
  });
});
