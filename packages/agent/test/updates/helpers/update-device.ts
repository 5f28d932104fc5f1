import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobUpdate, UpdateJob } from '@fleetward/protocol';
import type { UpdatesConfig } from '../../../src/config/agent-config.js';
import type { UpdateFault } from '../../../src/faults/update-faults.js';
import { UpdateClient, type UpdateClientDeps } from '../../../src/updates/update-client.js';
import type { Issued, TestPki } from './mtls-certs.js';
import type { UpdateServer } from './update-server.js';

export interface Report extends JobUpdate {
  readonly jobId: string;
}

export interface DeviceOptions {
  readonly config?: Partial<UpdatesConfig>;
  readonly factory?: UpdateClientDeps['factory'];
  readonly faults?: readonly UpdateFault[];
  readonly healthCheck?: () => boolean | Promise<boolean>;
}

/**
 * One device's update client over a real folder, with what it reports collected, a settable clock
 * and battery, and reboots counted (a test "reboots" by opening the client again on the same folder).
 */
export class UpdateDevice {
  readonly reports: Report[] = [];
  readonly home: string;
  readonly rootFile: string;
  clock = new Date('2030-01-01T12:00:00Z');
  battery: number | null = 80;
  reboots = 0;
  client!: UpdateClient;
  readonly #pki: TestPki;
  readonly #identity: Issued;
  readonly #options: DeviceOptions;

  private constructor(home: string, pki: TestPki, identity: Issued, options: DeviceOptions) {
    this.home = home;
    this.rootFile = join(home, 'root.json');
    this.#pki = pki;
    this.#identity = identity;
    this.#options = options;
  }

  static async create(pki: TestPki, rootJson: Buffer, options: DeviceOptions = {}): Promise<UpdateDevice> {
    const home = await mkdtemp(join(tmpdir(), 'fw-ota-'));
    const device = new UpdateDevice(home, pki, await pki.client('sensor-1'), options);
    await writeFile(device.rootFile, rootJson);
    await device.boot();
    return device;
  }

  /** Opens the client on the device's folder: first start, or the restart after a reboot or crash. */
  async boot(overrides: DeviceOptions = {}): Promise<UpdateClient> {
    const options = { ...this.#options, ...overrides };
    this.client = await UpdateClient.open({
      thing: 'sensor-1',
      home: this.home,
      config: {
        maintenanceWindow: null,
        minBatteryPercent: 30,
        healthTimeoutSeconds: 120,
        maxBootAttempts: 3,
        maxArtifactBytes: 1024 * 1024 * 1024,
        downloadAttempts: 5,
        checkIntervalSeconds: 60,
        ...options.config,
        trustedRoot: this.rootFile,
        hardware: 'sensor-v2',
      },
      factory: options.factory ?? { version: '1.4.0', securityVersion: 5, imagePath: null },
      identity: () => ({ key: { pem: this.#identity.keyPem }, certPem: this.#identity.certPem, caPem: this.#pki.caPem }),
      report: (jobId, update) => {
        this.reports.push({ jobId, ...update });
        return Promise.resolve();
      },
      battery: () => Promise.resolve(this.battery),
      reboot: () => {
        this.reboots += 1;
      },
      now: () => this.clock,
      sleep: () => Promise.resolve(),
      ...(options.faults && { faults: options.faults }),
      ...(options.healthCheck && { healthCheck: options.healthCheck }),
    });
    return this.client;
  }

  /** Hands the client a job and waits until it has done all it can with it. */
  async take(job: UpdateJob): Promise<void> {
    this.client.offer([job]);
    await this.client.settled();
  }

  reportsFor(jobId: string): Report[] {
    return this.reports.filter((r) => r.jobId === jobId);
  }

  last(jobId: string): Report | undefined {
    return this.reportsFor(jobId).at(-1);
  }

  async close(): Promise<void> {
    await this.client.close();
    await rm(this.home, { recursive: true, force: true });
  }
}

/** A job as the gateway sends it; its version fields are deliberately wrong: the device must not trust them. */
export function jobFor(server: UpdateServer, target: string, jobId = `job-${target.replace(/[^A-Za-z0-9_-]/g, '_')}`): UpdateJob {
  return { jobId, deploymentId: 'dep-1', state: 'queued', target, version: '99.0.0', securityVersion: 999, metadataUrl: server.metadataUrl, targetsUrl: server.targetsUrl, createdAt: '2030-01-01T00:00:00.000Z' };
}
