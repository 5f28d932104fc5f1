import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { monitorCommand } from '../../src/cli/commands/monitor.js';
import { buildProgram } from '../../src/cli/program.js';
import { closeContext, initialize, openLocal } from '../../src/node.js';
import { testEnvironment, type TestEnvironment } from '../helpers/environment.js';

/** Runs the CLI in this process (local mode on the test's data folder), with `monitor` registered. */
async function fleetward(...args: string[]): Promise<{ code: number; stdout: string; json: unknown }> {
  let stdout = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  process.exitCode = undefined;
  try {
    const program = buildProgram();
    if (!program.commands.some((c) => c.name() === 'monitor')) monitorCommand(program);
    await program.parseAsync(['node', 'fleetward', ...args]);
    const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch {
      json = undefined;
    }
    return { code, stdout, json };
  } finally {
    process.exitCode = undefined;
    out.mockRestore();
    err.mockRestore();
  }
}

describe('fleetward monitor (CLI, local data folder)', () => {
  let env: TestEnvironment;
  let dir: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    env = await testEnvironment('sqlite');
    for (const key of Object.keys(process.env)) if (key.startsWith('FLEETWARD_')) delete process.env[key];
    Object.assign(process.env, env.env);
    await initialize(env.config());
    const context = await openLocal(env.config());
    await context.identity.groups.create({ name: 'plant' }, { name: 'test' });
    await context.identity.thingTypes.create({ name: 'meter' }, { name: 'test' });
    await closeContext(context);
    dir = await mkdtemp(join(tmpdir(), 'fw-profiles-'));
    await writeFile(join(dir, 'meters.json'), JSON.stringify({ name: 'meters', behaviors: [{ name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: 600 }] }));
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ name: 'bad', behaviors: [{ name: 'x', metric: 'cloud.nope', operator: 'gt', value: 1 }] }));
  });
  afterAll(async () => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    await env.cleanup();
  });

  it('creates, attaches, lists, detaches and deletes a profile; refuses an invalid one with exit 2', async () => {
    expect(await fleetward('monitor', 'profiles', 'create', join(dir, 'meters.json'), '--json')).toMatchObject({ code: 0, json: { name: 'meters', groups: [] } });
    expect((await fleetward('monitor', 'profiles', 'create', join(dir, 'bad.json'))).code).toBe(2);
    expect((await fleetward('monitor', 'profiles', 'attach', 'meters', 'plant')).stdout).toContain('attached to plant');
    expect((await fleetward('monitor', 'profiles', 'list')).stdout).toMatch(/meters\s+flood\s+plant/);
    expect((await fleetward('monitor', 'profiles', 'detach', 'meters', 'plant', '--json')).json).toMatchObject({ groups: [] });
    expect((await fleetward('monitor', 'profiles', 'delete', 'meters')).code).toBe(0);
    expect((await fleetward('monitor', 'profiles', 'list', '--json')).json).toEqual({ profiles: [] });
  });

  it('declares custom metrics and shows a thing\'s metrics', async () => {
    expect((await fleetward('monitor', 'custom-metrics', 'declare', 'meter', 'queue.depth', 'number', '--json')).json).toEqual({ thingType: 'meter', name: 'queue.depth', kind: 'number', description: '' });
    expect((await fleetward('monitor', 'custom-metrics', 'list')).stdout).toMatch(/meter\s+queue\.depth\s+number/);
    expect((await fleetward('monitor', 'metrics', 'nothing-yet', '--since', '2h', '--json')).json).toEqual({ thing: 'nothing-yet', windows: [] });
    expect((await fleetward('monitor', 'metrics', 'plant', '--group', '--json')).json).toEqual({ group: 'plant', windows: [] });
  });
});
