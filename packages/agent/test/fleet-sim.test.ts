import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { runFleet } from '../src/sim/fleet-simulator.js';
import { NodeApi } from '../src/sim/node-api.js';
import { parseSimOptions } from '../src/sim/sim-options.js';
import { startAgentNode, type AgentNode } from './helpers/agent-node.js';

const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function fleetNode(): Promise<{ n: AgentNode; api: NodeApi }> {
  // The default for a new fleet: data on topics without a contract is refused. The simulator brings its contract.
  const n = await startAgentNode({ FLEETWARD_DATA_UNMATCHED_TOPICS: 'refuse' });
  cleanups.push(() => n.close());
  const token = await n.t.operatorToken('sim', 'operator');
  return { n, api: new NodeApi({ apiUrl: n.apiUrl, token, caPem: n.caPem }) };
}

describe('fleetward-sim', () => {
  it('normal: every device provisions by claim, connects and has its telemetry acknowledged', async () => {
    const { n, api } = await fleetNode();
    const summary = await runFleet(api, { caPem: n.caPem, mqttUrl: n.mqttUrl }, parseSimOptions(['--devices', '12', '--duration', '3', '--rate', '2']));
    expect(summary).toMatchObject({ devices: 12, provisioned: 12, connected: 12, errors: 0, refused: 0 });
    expect(summary.published).toBeGreaterThanOrEqual(12 * 3);
    expect(summary.acknowledged).toBe(summary.published);
    expect(summary.connectSeconds).not.toBeNull();
    const things = await n.t.node.context.identity.things.list({ limit: 100 });
    expect(things.things.filter((t) => t.name.startsWith('sim-'))).toHaveLength(12);
    // What the gateway accepted was stored under the simulator's contract.
    const stored = await n.t.node.context.store.db.selectFrom('data_telemetry').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBeGreaterThanOrEqual(summary.acknowledged - 12);
  });

  it('faulty: malformed readings are refused on the device, low batteries thin telemetry, a flapping link loses nothing', async () => {
    const { n, api } = await fleetNode();
    const summary = await runFleet(api, { caPem: n.caPem, mqttUrl: n.mqttUrl }, parseSimOptions(['--devices', '6', '--duration', '8', '--rate', '4', '--profile', 'faulty']));
    expect(summary).toMatchObject({ provisioned: 6, errors: 0 });
    expect(summary.malformed).toBeGreaterThan(0);
    expect(summary.deferred).toBeGreaterThan(0);
    // Everything handed over and not refused locally reached the gateway, across the link's drops.
    expect(summary.acknowledged).toBe(summary.published);
  });

  it('hostile: every attempt on another device, the fleet, the limits or with a revoked certificate is refused, and detected', async () => {
    const { n, api } = await fleetNode();
    const summary = await runFleet(api, { caPem: n.caPem, mqttUrl: n.mqttUrl }, parseSimOptions(['--devices', '10', '--duration', '2', '--profile', 'hostile']));
    expect(summary, JSON.stringify(summary)).toMatchObject({ provisioned: 10 });
    expect(summary.attacks.attempted, JSON.stringify(summary)).toBe(10 * 3 + 1);
    expect(summary.attacks.refused).toBe(summary.attacks.attempted);
    // And detected (rule 5): every device's flood and its attempts on another device raised an alert.
    expect(summary.attacks.expectedDetections).toBe(10 * 2);
    expect(summary.attacks.detected, JSON.stringify(summary.attacks)).toBe(summary.attacks.expectedDetections);
  });

  it('the command refuses bad usage and a missing node with exit 2 and a clear message', async () => {
    const bin = new URL('../bin/fleetward-sim.js', import.meta.url).pathname;
    const fail = (args: string[], env: Record<string, string> = {}) => run(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(await fail(['--devices', 'many', '--duration', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--devices must be') });
    expect(await fail(['--devices', '1', '--duration', '1', '--profile', 'evil'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--profile') });
    expect(await fail(['--devices', '1', '--duration', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('FLEETWARD_URL') });
  });
});
