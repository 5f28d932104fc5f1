import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../packages/server/src/config/load-config.js';
import { closeContext, openHome } from '../../packages/server/src/node.js';
import { provisionFleet, type Fleet } from '../gateway/fleet.js';
import { startDeviceLoad, startGateway, type DeviceLoad, type RunningGateway } from '../gateway/processes.js';
import { progress } from '../lib/report.js';
import { THROUGHPUT_LIMITS } from '../scenarios/gateway.js';

/** Two sides of the data-minimization issue's comparison: a contract covers the telemetry, or nothing does. */
export type ContractPhase = 'on' | 'off';

export interface PhaseFigures {
  readonly messagesPerSecond: number;
  readonly perMessageBrokerUs: number;
}

export interface ContractThroughputOptions {
  /** The contract in force for phase `on`; it must cover `things/${thing.name}/telemetry`. */
  readonly contract: unknown;
  /** The JSON document every device publishes; it must pass the contract. */
  readonly body: string;
  readonly runs: number;
  readonly publishers: number;
  readonly window: number;
  readonly qos: 0 | 1;
  readonly warmupSeconds: number;
  readonly seconds: number;
}

/**
 * What differs between the two nodes, and nothing else. Phase `on` keeps the default
 * (`refuse`) for unmatched topics, so a contract that failed to match would deliver nothing
 * rather than quietly measure the unclassified path.
 */
const PHASE_SETTINGS: Readonly<Record<ContractPhase, Readonly<Record<string, string>>>> = {
  on: {},
  off: { FLEETWARD_DATA_UNMATCHED_TOPICS: 'pass-unclassified' },
};

interface Side {
  readonly fleet: Fleet;
  load: DeviceLoad | null;
  gateway: RunningGateway | null;
}

/**
 * End-to-end gateway throughput with a data contract in force vs none, in the same run: two data
 * folders provisioned alike, one node each in its own process (bench/gateway/gateway-node.ts), both
 * started and idle while the other is measured, the order alternating run by run. Delivered
 * messages/s at the observer and the node's CPU per delivered message, as the gateway scenario
 * measures them; phase `on` includes validation, minimization and SQLite storage.
 */
export async function measureContractThroughput(options: ContractThroughputOptions): Promise<Record<ContractPhase, PhaseFigures[]>> {
  const figures: Record<ContractPhase, PhaseFigures[]> = { on: [], off: [] };
  const sides = new Map<ContractPhase, Side>();
  try {
    for (const phase of ['on', 'off'] as const) {
      progress(`contract ${phase}: provisioning ${options.publishers} devices and the observer (SQLite)...`);
      const side: Side = { fleet: await provisionFleet(options.publishers), load: null, gateway: null };
      sides.set(phase, side);
      if (phase === 'on') await applyContract(side.fleet, options.contract);
      side.load = await startDeviceLoad(side.fleet.devicesFile, await writeChain(side.fleet));
      side.gateway = await startGateway({ ...side.fleet.env, ...THROUGHPUT_LIMITS, ...PHASE_SETTINGS[phase] });
    }
    for (let run = 1; run <= options.runs; run += 1) {
      const order: readonly ContractPhase[] = run % 2 === 1 ? ['on', 'off'] : ['off', 'on'];
      for (const phase of order) {
        const { load, gateway } = sides.get(phase) as Side;
        figures[phase].push(await measurePhase(load as DeviceLoad, gateway as RunningGateway, options, phase, run));
      }
    }
  } finally {
    for (const side of sides.values()) {
      await side.gateway?.stop();
      await side.load?.stop();
      await side.fleet.remove();
    }
  }
  return figures;
}

async function measurePhase(load: DeviceLoad, gateway: RunningGateway, options: ContractThroughputOptions, phase: ContractPhase, run: number): Promise<PhaseFigures> {
  const report = await load.run<PhaseFigures>({
    cmd: 'pubsub',
    port: gateway.port,
    pid: gateway.pid,
    observer: 0,
    from: 1,
    publishers: options.publishers,
    qos: options.qos,
    window: options.window,
    payload: Buffer.byteLength(options.body),
    body: options.body,
    warmupSeconds: options.warmupSeconds,
    seconds: options.seconds,
  });
  if (!(report.messagesPerSecond > 0)) throw new Error(`contract ${phase}: nothing delivered (${JSON.stringify(report)})`);
  progress(`run ${run}/${options.runs} contract ${phase}: QoS ${options.qos} ${Math.round(report.messagesPerSecond)}/s, ${report.perMessageBrokerUs.toFixed(1)} µs broker CPU/message`);
  return { messagesPerSecond: report.messagesPerSecond, perMessageBrokerUs: report.perMessageBrokerUs };
}

/** Applied to the data folder before its node starts, as `fleetward data contracts apply` would. */
async function applyContract(fleet: Fleet, contract: unknown): Promise<void> {
  const { context } = await openHome(loadConfig({ env: fleet.env, flags: {} }).config, { create: false });
  try {
    await context.data.contracts.apply([contract], { name: 'bench' });
  } finally {
    await closeContext(context);
  }
}

/** What the devices trust: the fleet's CA chain (the node's server certificate chains to it). */
async function writeChain(fleet: Fleet): Promise<string> {
  const file = join(dirname(fleet.home), 'chain.pem');
  await writeFile(file, fleet.chainPem);
  return file;
}
