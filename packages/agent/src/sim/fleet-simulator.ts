import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttackSetup } from './device-attacker.js';
import { planAttacks, setUpFleet, type AttackPlan } from './fleet-setup.js';
import { FlappingLink } from './flapping-link.js';
import { HostileCampaign, NO_ATTACKS, type AttacksSummary, type HostileDevice } from './hostile-campaign.js';
import { inBatches } from './in-batches.js';
import type { NodeApi } from './node-api.js';
import type { SimOptions } from './sim-options.js';
import { SimulatedDevice, writeClaim } from './simulated-device.js';

export interface SimSummary {
  readonly devices: number;
  readonly profile: SimOptions['profile'];
  readonly durationSeconds: number;
  readonly template: string;
  readonly provisioned: number;
  /** Online at the end of the run. */
  readonly connected: number;
  /** Readings handed to the agents (queued on their disks). */
  readonly published: number;
  /** Messages the gateway acknowledged (PUBACK success). */
  readonly acknowledged: number;
  /** Messages the gateway refused, plus readings refused on the device. */
  readonly refused: number;
  readonly malformed: number;
  readonly deferred: number;
  readonly errors: number;
  /** The hostile profile's attacks: refused and detected, in total and per attack kind (`detected`: (device, behaviour) pairs that raised an alert). */
  readonly attacks: AttacksSummary;
  /** Update jobs finished by the devices (with --trusted-root), and their simulated reboots. */
  readonly updates: { readonly succeeded: number; readonly failed: number; readonly rejected: number; readonly reboots: number };
  /** Seconds from the start until every provisioned device was online for the first time. */
  readonly connectSeconds: number | null;
  readonly elapsedSeconds: number;
  readonly firstErrors: readonly string[];
}

export interface Progress {
  readonly elapsedSeconds: number;
  readonly provisioned: number;
  readonly connected: number;
  readonly published: number;
  readonly acknowledged: number;
  readonly errors: number;
}

/**
 * How long the end of a run waits for every agent's queue to be delivered. A faulty profile's link
 * is cut for 1 s every 5 s: a device cut just as the run ends is offline for the cut, then backs
 * off (up to a few seconds) and reconnects over TLS on loaded cores before its queue can go. Two
 * link cycles cover that; a queue that empties sooner ends the wait sooner.
 */
const DRAIN_TIMEOUT_MS = 15_000;

/**
 * A simulated fleet against a node: set up through the operator API, every device provisioned by
 * claim (at most `concurrency` at a time), telemetry at the configured rate, the profile's faults
 * or attacks, and a summary of what happened. `runFleet` does all of it; benchmarks drive the steps.
 */
export class SimulatedFleet {
  readonly devices: readonly SimulatedDevice[];
  readonly #options: SimOptions;
  readonly #root: string;
  readonly #link: FlappingLink | null;
  readonly #template: string;
  readonly #campaign: HostileCampaign | null;
  readonly #started = Date.now();
  readonly #latencies: number[] = [];
  #connectSeconds: number | null = null;

  private constructor(devices: SimulatedDevice[], options: SimOptions, root: string, link: FlappingLink | null, template: string, campaign: HostileCampaign | null) {
    this.devices = devices;
    this.#options = options;
    this.#root = root;
    this.#link = link;
    this.#template = template;
    this.#campaign = campaign;
  }

  static async create(api: NodeApi, target: { readonly caPem: string; readonly mqttUrl: string }, options: SimOptions): Promise<SimulatedFleet> {
    // Before anything is set up: an attack asked for that the node cannot judge refuses the run.
    const plan = options.profile === 'hostile' ? await planAttacks(api, options, target.mqttUrl) : null;
    const root = await mkdtemp(join(tmpdir(), 'fleetward-sim-'));
    // Devices that take updates, or report an image to be judged, are registered with their hardware as thing type (what deployments and the inventory match).
    const typed = options.trustedRoot !== null || plan?.kinds.includes('firmware') === true;
    const setup = await setUpFleet(api, { thingType: typed ? options.hardware : null, hostile: plan === null ? null : { ratePerSecond: options.rate } });
    await writeClaim(root, setup);
    const caFile = join(root, 'ca.pem');
    await writeFile(caFile, target.caPem);
    const gateway = new URL(target.mqttUrl.replace(/^mqtts:/, 'https:'));
    const link = options.profile === 'faulty' ? await new FlappingLink({ host: gateway.hostname, port: Number(gateway.port || 8883) }).start(5_000, 1_000) : null;
    const env = {
      setup,
      profile: options.profile,
      mqttUrl: target.mqttUrl,
      flappingUrl: link ? `mqtts://127.0.0.1:${link.port}` : null,
      caFile,
      root,
      durationSeconds: options.durationSeconds,
      attacks: plan === null ? null : attackSetup(api, plan),
      updates: options.trustedRoot === null ? null : { trustedRoot: options.trustedRoot, hardware: options.hardware },
    };
    const devices = Array.from({ length: options.devices }, (_, i) => new SimulatedDevice(env, i));
    const campaign = plan === null || setup.detectionProfile === null ? null : new HostileCampaign(api, hostileDevices(devices), plan, options.attacks, setup.detectionProfile, options.concurrency);
    return new SimulatedFleet(devices, options, root, link, setup.template, campaign);
  }

  progress(): Progress {
    const p = {
      elapsedSeconds: Math.round((Date.now() - this.#started) / 1000),
      provisioned: this.devices.filter((d) => d.counts.provisioned).length,
      connected: this.online(),
      published: sum(this.devices, (d) => d.counts.published),
      acknowledged: sum(this.devices, (d) => d.agent?.status().published ?? 0),
      errors: sum(this.devices, (d) => d.counts.errors),
    };
    if (this.#connectSeconds === null && p.provisioned > 0 && p.connected === p.provisioned && p.provisioned + p.errors >= this.devices.length) this.#connectSeconds = (Date.now() - this.#started) / 1000;
    return p;
  }

  online(): number {
    return this.devices.filter((d) => d.agent?.online).length;
  }

  /** Provisions and connects every device; one in `latencySampleEvery` also receives its own telemetry, to time delivery. */
  async start(latencySampleEvery = 0): Promise<void> {
    await inBatches(this.devices, this.#options.concurrency, async (d, i) => {
      await d.start();
      if (latencySampleEvery > 0 && i % latencySampleEvery === 0) await d.timeOwnTelemetry((ms) => this.#latencies.push(ms)).catch(() => undefined);
    });
  }

  /** Sends telemetry at the configured rate for `seconds`, playing the profile's attacks alongside. */
  async run(seconds: number): Promise<void> {
    const until = Date.now() + seconds * 1000;
    const periodMs = 1000 / this.#options.rate;
    const senders = this.devices.map((device, i) => repeatUntil(until, periodMs, (i / this.devices.length) * periodMs, () => device.sendReading()));
    await Promise.all([...senders, this.#campaign?.play()]);
    await Promise.all(this.devices.map((d) => d.agent?.drained(DRAIN_TIMEOUT_MS) ?? Promise.resolve(true)));
  }

  /** Publish-to-subscriber delays seen so far (ms), and forgets them. */
  takeLatencies(): number[] {
    return this.#latencies.splice(0);
  }

  summary(): SimSummary {
    const end = this.progress();
    const { devices } = this;
    return {
      devices: devices.length,
      profile: this.#options.profile,
      durationSeconds: this.#options.durationSeconds,
      template: this.#template,
      provisioned: end.provisioned,
      connected: end.connected,
      published: end.published,
      acknowledged: end.acknowledged,
      refused: sum(devices, (d) => (d.agent?.status().refused ?? 0) + d.counts.malformed),
      malformed: sum(devices, (d) => d.counts.malformed),
      deferred: sum(devices, (d) => d.counts.deferred),
      errors: end.errors,
      attacks: this.#campaign?.summary() ?? NO_ATTACKS,
      updates: {
        succeeded: sum(devices, (d) => d.counts.updates.succeeded),
        failed: sum(devices, (d) => d.counts.updates.failed),
        rejected: sum(devices, (d) => d.counts.updates.rejected),
        reboots: sum(devices, (d) => d.counts.updates.reboots),
      },
      connectSeconds: this.#connectSeconds,
      elapsedSeconds: (Date.now() - this.#started) / 1000,
      firstErrors: [...new Set(devices.flatMap((d) => (d.counts.lastError === null ? [] : [d.counts.lastError])))].slice(0, 5),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.stop().catch(() => undefined)));
    await this.#link?.close();
    await rm(this.#root, { recursive: true, force: true });
  }
}

/** Exit 1 for the CLI: an error, an attack the platform let through, or one it did not detect. */
export function simFailed(summary: SimSummary): boolean {
  return summary.errors > 0 || summary.attacks.refused < summary.attacks.attempted || summary.attacks.detected < summary.attacks.expectedDetections;
}

export async function runFleet(api: NodeApi, target: { readonly caPem: string; readonly mqttUrl: string }, options: SimOptions, onProgress: (p: Progress) => void = () => undefined): Promise<SimSummary> {
  const fleet = await SimulatedFleet.create(api, target, options);
  const ticker = setInterval(() => onProgress(fleet.progress()), 250);
  try {
    await fleet.start();
    await fleet.run(options.durationSeconds);
    return fleet.summary();
  } finally {
    clearInterval(ticker);
    await fleet.stop();
  }
}

async function repeatUntil(until: number, periodMs: number, offsetMs: number, work: () => Promise<void>): Promise<void> {
  await new Promise((r) => setTimeout(r, offsetMs));
  while (Date.now() < until) {
    const next = Date.now() + periodMs;
    await work();
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(next, until) - Date.now())));
  }
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  return items.reduce((total, item) => total + of(item), 0);
}

function attackSetup(api: NodeApi, plan: AttackPlan): AttackSetup {
  return {
    kinds: plan.kinds,
    cloneSource: plan.cloneSource,
    // The operator's answer to a stolen key, which the hostile device then keeps trying with.
    revoke: async (serial: string) => void (await api.call('POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' })),
  };
}

function hostileDevices(devices: readonly SimulatedDevice[]): HostileDevice[] {
  return devices.flatMap((d) => (d.attacker === null ? [] : [{ name: d.name, attacker: d.attacker }]));
}
