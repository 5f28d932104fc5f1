import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setUpFleet, type FleetSetup } from './fleet-setup.js';
import { FlappingLink } from './flapping-link.js';
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
  /** `detected`: (device, behaviour) pairs of the hostile security profile that raised an alert. */
  readonly attacks: { readonly attempted: number; readonly refused: number; readonly detected: number; readonly expectedDetections: number };
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
  readonly #detection: FleetSetup['detection'];
  readonly #api: NodeApi;
  #detected = 0;
  readonly #started = Date.now();
  readonly #latencies: number[] = [];
  #connectSeconds: number | null = null;

  private constructor(devices: SimulatedDevice[], options: SimOptions, root: string, link: FlappingLink | null, setup: FleetSetup, api: NodeApi) {
    this.devices = devices;
    this.#options = options;
    this.#root = root;
    this.#link = link;
    this.#template = setup.template;
    this.#detection = setup.detection;
    this.#api = api;
  }

  static async create(api: NodeApi, target: { readonly caPem: string; readonly mqttUrl: string }, options: SimOptions): Promise<SimulatedFleet> {
    const root = await mkdtemp(join(tmpdir(), 'fleetward-sim-'));
    // Devices that take updates are registered with their hardware as thing type (what deployments match).
    const setup = await setUpFleet(api, { thingType: options.trustedRoot === null ? null : options.hardware, hostile: options.profile === 'hostile' ? { ratePerSecond: options.rate } : null });
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
      revoke: async (serial: string) => void (await api.call('POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' })),
      updates: options.trustedRoot === null ? null : { trustedRoot: options.trustedRoot, hardware: options.hardware },
    };
    const devices = Array.from({ length: options.devices }, (_, i) => new SimulatedDevice(env, i));
    return new SimulatedFleet(devices, options, root, link, setup, api);
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
    const attacks = this.#options.profile === 'hostile' ? inBatches(this.devices, this.#options.concurrency, (d, i) => d.attack(this.devices[(i + 1) % this.devices.length]?.name ?? d.name)) : Promise.resolve();
    await Promise.all([...senders, attacks]);
    await Promise.all(this.devices.map((d) => d.agent?.drained(5_000) ?? Promise.resolve(true)));
    if (this.#options.profile === 'hostile') this.#detected = await this.#countDetections();
  }

  /** The hostile profile's alerts the node raised, per device and behaviour (waiting up to 5 s for the last ones). */
  async #countDetections(): Promise<number> {
    const detection = this.#detection;
    if (detection === null) return 0;
    const deadline = Date.now() + 5_000;
    let found = 0;
    for (;;) {
      const seen = await Promise.all(
        this.devices.map(async (d) => {
          const { alerts } = await this.#api.call<{ alerts: { profile: string | null; behavior: string }[] }>('GET', `/api/v1/alerts?thing=${d.name}`);
          return new Set(alerts.filter((a) => a.profile === detection.profile).map((a) => a.behavior)).size;
        }),
      );
      found = seen.reduce((a, b) => a + b, 0);
      if (found >= this.devices.length * detection.behaviors.length || Date.now() > deadline) return found;
      await new Promise((r) => setTimeout(r, 250));
    }
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
      attacks: {
        attempted: sum(devices, (d) => d.counts.attacksAttempted),
        refused: sum(devices, (d) => d.counts.attacksRefused),
        detected: this.#detected,
        expectedDetections: this.#detection === null || this.#options.profile !== 'hostile' ? 0 : devices.length * this.#detection.behaviors.length,
      },
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

async function inBatches<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
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
