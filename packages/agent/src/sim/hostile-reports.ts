import { createHash } from 'node:crypto';
import type { DeviceMetricsReport, InventoryReport } from '@fleetward/protocol';
import type { DeviceReports } from '../metrics/proc-reports.js';
import { AGENT_VERSION } from '../version.js';
import { COMPROMISE, SIM_IMAGE, type ReportedAttack } from './attacks.js';

const MIB = 1024 * 1024;

/**
 * One metrics report of a simulated hostile device: the image's figures (SIM_IMAGE), plus what the
 * attacks in `compromised` added. Fixed figures, not this host's: detection must be tripped by the
 * attacks alone, whatever else runs on the machine. `seq` makes the counters grow as a device's do.
 */
export function hostileMetrics(compromised: ReadonlySet<ReportedAttack>, seq: number, at: Date): DeviceMetricsReport {
  const listening = compromised.has('ports') ? [...SIM_IMAGE.listening, COMPROMISE.backdoor] : SIM_IMAGE.listening;
  const exfiltrating = compromised.has('destinations');
  return {
    v: 1,
    at: at.toISOString(),
    network: {
      listening,
      listeningTotal: listening.length,
      established: exfiltrating ? COMPROMISE.connections : 1,
      destinations: exfiltrating ? [SIM_IMAGE.backend, COMPROMISE.exfiltrationTo] : [SIM_IMAGE.backend],
      bytesIn: 2_000 * seq,
      bytesOut: 1_500 * seq,
      packetsIn: 20 * seq,
      packetsOut: 15 * seq,
    },
    processes: compromised.has('processes') ? COMPROMISE.processes : SIM_IMAGE.processes,
    memory: { totalBytes: 512 * MIB, usedBytes: 128 * MIB },
    cpuPercent: 5,
    disk: { totalBytes: 4_096 * MIB, usedBytes: 1_024 * MIB, freeBytes: 3_072 * MIB },
    uptimeSeconds: 3_600 + seq,
    agentRestarts: 0,
    authFailures: 0,
    batteryPercent: null,
    custom: {},
  };
}

/** The inventory of a device flashed with an image the fleet never signed: an unknown hash (per device) and version. */
export function unsignedImageInventory(thing: string, at: Date): InventoryReport {
  const hash = createHash('sha256').update(`fleetward-sim unsigned image for ${thing}`).digest('hex');
  return {
    v: 1,
    at: at.toISOString(),
    agentVersion: AGENT_VERSION,
    firmwareVersion: '1.0.0-unsigned',
    imageHash: `sha256:${hash}`,
    os: { type: 'Linux', release: '6.1.0', arch: 'arm64', name: null },
    sbomRef: null,
  };
}

/**
 * What a hostile device's agent reports: the image's figures until `compromise` — the attacker's
 * changes on the device — and those from then on. The agent itself stays honest: it reports what
 * is there, as a real agent on a compromised device would.
 */
export class HostileReports implements DeviceReports {
  readonly #inventory: () => Promise<object>;
  readonly #compromised = new Set<ReportedAttack>();
  #seq = 0;
  #sinceCompromise = 0;

  constructor(inventory: () => Promise<object>) {
    this.#inventory = inventory;
  }

  /** Reports the agent handed over since the last `compromise` (the agent asks only when it is connected). */
  get sentSinceCompromise(): number {
    return this.#sinceCompromise;
  }

  compromise(attacks: readonly ReportedAttack[]): void {
    for (const attack of attacks) this.#compromised.add(attack);
    this.#sinceCompromise = 0;
  }

  metrics(): Promise<object> {
    this.#seq += 1;
    this.#sinceCompromise += 1;
    return Promise.resolve(hostileMetrics(this.#compromised, this.#seq, new Date()));
  }

  inventory(): Promise<object> {
    return this.#inventory();
  }
}
