import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import { FleetwardAgent, type AgentEvent, type AgentOptions } from '../agent.js';
import { parseAgentConfig, type AgentConfig } from '../config/agent-config.js';
import type { UpdateFault } from '../faults/update-faults.js';
import { scriptedBattery } from '../metrics/battery.js';
import { CpuMeter } from '../metrics/cpu-meter.js';
import { collectDeviceMetrics } from '../metrics/device-metrics.js';
import { collectInventory } from '../metrics/inventory.js';
import type { DeviceReports } from '../metrics/proc-reports.js';
import { AGENT_VERSION } from '../version.js';
import { attacksOf, REPORT_SECONDS } from './attacks.js';
import { DeviceAttacker, type AttackSetup } from './device-attacker.js';
import type { FleetSetup } from './fleet-setup.js';
import type { Profile } from './sim-options.js';

export interface DeviceEnvironment {
  readonly setup: FleetSetup;
  readonly profile: Profile;
  readonly mqttUrl: string;
  /** Where faulty devices connect instead: a link that drops every few seconds. */
  readonly flappingUrl: string | null;
  readonly caFile: string;
  readonly root: string;
  readonly durationSeconds: number;
  /** The hostile profile's attacks (null for the other profiles). */
  readonly attacks: AttackSetup | null;
  /** With the fleet's TUF root, devices take update jobs (A/B slots are folders in each device's state folder). */
  readonly updates: { readonly trustedRoot: string; readonly hardware: string } | null;
}

/** What one device saw, summed over the fleet for the summary. */
export interface DeviceCounts {
  provisioned: boolean;
  published: number;
  malformed: number;
  deferred: number;
  errors: number;
  /** Update jobs this device finished, by final state, and its reboots into (or back from) a new slot. */
  updates: { succeeded: number; failed: number; rejected: number; reboots: number };
  lastError: string | null;
}

/**
 * Update faults of the faulty profile, by device: one in ten fails the health check of its new slot
 * (and rolls back), one in ten corrupts its download (refused), one in twenty stalls mid-update.
 */
export function simulatedUpdateFaults(index: number): UpdateFault[] {
  if (index % 20 === 9) return ['stall-update'];
  if (index % 10 === 3) return ['boot-failure'];
  if (index % 10 === 6) return ['corrupt-download'];
  return [];
}

/**
 * Thousands of simulated devices share one machine: each reports the host's figures, collected once
 * every few seconds for all of them (reading /proc per device would measure the simulator).
 */
function sharedReports(): DeviceReports {
  let metrics: { at: number; report: Promise<object> } | null = null;
  let inventory: Promise<object> | null = null;
  const cpu = new CpuMeter();
  return {
    metrics() {
      if (metrics === null || Date.now() - metrics.at > 5_000) metrics = { at: Date.now(), report: collectDeviceMetrics({ counters: () => ({ agentRestarts: 0, authFailures: 0 }), cpu }) };
      return metrics.report;
    },
    inventory() {
      inventory ??= collectInventory({ agentVersion: AGENT_VERSION, firmwareVersion: '1.0.0' });
      return inventory;
    },
  };
}

const SHARED_REPORTS = sharedReports();

/** One simulated device: a real agent (own key, certificate, session, queue), driven by a profile. */
export class SimulatedDevice {
  readonly name: string;
  readonly counts: DeviceCounts = { provisioned: false, published: 0, malformed: 0, deferred: 0, errors: 0, updates: { succeeded: 0, failed: 0, rejected: 0, reboots: 0 }, lastError: null };
  /** The hostile profile's attacks of this device. */
  readonly attacker: DeviceAttacker | null;
  readonly #env: DeviceEnvironment;
  readonly #index: number;
  #agent: FleetwardAgent | null = null;
  #started: { readonly config: AgentConfig; readonly options: AgentOptions } | null = null;
  #seq = 0;
  #refusedConnections = 0;

  constructor(env: DeviceEnvironment, index: number) {
    this.#env = env;
    this.#index = index;
    this.name = env.setup.thingName(index);
    this.attacker = env.attacks === null ? null : this.#attackerFor(env.attacks);
  }

  get agent(): FleetwardAgent | null {
    return this.#agent;
  }

  /** Provisions by claim (retrying what is worth retrying: a busy gateway, a dropped link) and connects. */
  async start(): Promise<void> {
    const { setup } = this.#env;
    const claimCertFile = join(this.#env.root, 'claim.pem');
    const faulty = this.#env.profile === 'faulty';
    const config = parseAgentConfig(
      {
        thing: this.name,
        mqttUrl: faulty && this.#env.flappingUrl !== null && this.#index % 2 === 0 ? this.#env.flappingUrl : this.#env.mqttUrl,
        caFile: this.#env.caFile,
        stateDir: join(this.#env.root, this.name),
        provisioning: { method: 'claim-certificate', template: setup.template, claimCertFile, claimKeyFile: join(this.#env.root, 'claim.key') },
        reconnect: { initialMs: 500, maxMs: 30_000 },
        metricsIntervalSeconds: this.attacker !== null ? REPORT_SECONDS : faulty ? 2 : 86_400,
        queue: { maxEntries: 1_000, maxBytes: 1_048_576, durability: 'write' },
        ...(this.#env.updates && {
          firmware: { version: '1.0.0', securityVersion: 0 },
          updates: { trustedRoot: this.#env.updates.trustedRoot, hardware: this.#env.updates.hardware, checkIntervalSeconds: 5, healthTimeoutSeconds: 60, minBatteryPercent: 0 },
        }),
      },
      this.#env.root,
    );
    const options: AgentOptions = {
      // A hostile device reports its image's fixed figures, and the attacker's changes to them.
      reports: this.attacker?.reports ?? SHARED_REPORTS,
      onEvent: (event: AgentEvent) => this.#observe(event),
      // A simulated reboot: the agent stops and starts again in this process, and boots the slot its update state names.
      reboot: () => this.#reboot(),
      ...(faulty && this.#env.updates && { updateFaults: simulatedUpdateFaults(this.#index) }),
      ...(faulty && {
        battery: scriptedBattery(this.#index % 3 === 0 ? [60, 40, 20, 10, 5] : [90]),
        memoryAvailable: () => (this.#index % 10 === 0 && this.#seq % 20 === 10 ? 0.01 : 0.5),
      }),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const full = { ...config, telemetrySchemas: { env: setup.telemetrySchema } };
        this.#agent = await FleetwardAgent.start(full, options);
        this.#started = { config: full, options };
        this.counts.provisioned = true;
        return;
      } catch (error) {
        const retry = !(error instanceof FleetwardError) || ['FW_ERR_NOT_READY', 'FW_ERR_INTERNAL'].includes(error.code);
        this.counts.lastError = (error as Error).message;
        if (!retry || attempt >= 5) {
          this.counts.errors += 1;
          return;
        }
        await new Promise((r) => setTimeout(r, Math.random() * 1_000 * 2 ** attempt));
      }
    }
  }

  /** One telemetry reading; the faulty profile makes one in ten malformed (refused on the device). */
  async sendReading(): Promise<void> {
    const agent = this.#agent;
    if (agent === null) return;
    this.#seq += 1;
    const malformed = this.#env.profile === 'faulty' && this.#seq % 10 === 0;
    const reading = { celsius: malformed ? 999 : 15 + ((this.#index + this.#seq) % 100) / 10, seq: this.#seq, sentAt: Date.now() };
    try {
      if ((await agent.telemetry('env', reading)) === 'deferred') this.counts.deferred += 1;
      else this.counts.published += 1;
      if (this.#env.profile === 'faulty') await agent.checkResources();
    } catch (error) {
      if (error instanceof FleetwardError && error.code === 'FW_ERR_PAYLOAD_REJECTED') this.counts.malformed += 1;
      else this.#error(error);
    }
  }

  /** Subscribes the device to its own telemetry and reports each reading's delay from send to delivery. */
  async timeOwnTelemetry(record: (ms: number) => void): Promise<void> {
    await this.#agent?.subscribe(`things/${this.name}/telemetry/env`, (_topic, payload) => {
      const sentAt = (JSON.parse(payload.toString()) as { sentAt?: unknown }).sentAt;
      if (typeof sentAt === 'number') record(Date.now() - sentAt);
    });
  }

  async stop(): Promise<void> {
    this.#started = null;
    await this.#agent?.stop();
  }

  /** Restarts the agent in this process (after the update client's own reports are on disk). */
  #reboot(): void {
    const started = this.#started;
    if (started === null) return;
    this.counts.updates.reboots += 1;
    setImmediate(() => {
      void (async () => {
        const previous = this.#agent;
        this.#agent = null;
        await previous?.stop();
        if (this.#started === null) return;
        this.#agent = await FleetwardAgent.start(started.config, started.options);
      })().catch((error: unknown) => this.#error(error));
    });
  }

  /** The attacker holds the device's stolen credentials and sees its agent (also after a reboot). */
  #attackerFor(attacks: AttackSetup): DeviceAttacker {
    const device = {
      index: this.#index,
      credentials: { thing: this.name, stateDir: join(this.#env.root, this.name), caFile: this.#env.caFile, mqttUrl: this.#env.mqttUrl },
      agent: () => this.#agent,
      refusedConnections: () => this.#refusedConnections,
      error: (error: unknown) => this.#error(error),
    };
    return new DeviceAttacker(device, attacks, attacksOf(attacks.kinds, this.#index), () => SHARED_REPORTS.inventory());
  }

  #observe(event: AgentEvent): void {
    if (event.type === 'update') {
      const state = event.update.state;
      if (state === 'succeeded' || state === 'failed' || state === 'rejected') this.counts.updates[state] += 1;
    }
    if (event.type === 'refused') this.#refusedConnections += 1;
    if (event.type === 'error') this.#error(new Error(event.message));
  }

  #error(error: unknown): void {
    this.counts.errors += 1;
    this.counts.lastError = (error as Error).message;
  }
}

export async function writeClaim(root: string, setup: FleetSetup): Promise<void> {
  await writeFile(join(root, 'claim.pem'), setup.claimCertPem);
  await writeFile(join(root, 'claim.key'), setup.claimKeyPem, { mode: 0o600 });
}
