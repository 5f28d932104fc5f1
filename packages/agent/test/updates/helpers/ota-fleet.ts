import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobState } from '@fleetward/protocol';
import { FleetwardAgent, type AgentEvent, type AgentOptions } from '../../../src/agent.js';
import type { UpdateFault } from '../../../src/faults/update-faults.js';
import { credentialFiles } from '../../../src/identity/device-credentials.js';
import type { Clock } from '../../../../server/src/clock.js';
import type { Deployment, DeploymentJob } from '../../../../server/src/updates/deployments/index.js';
import type { DeploymentRequest } from '../../../../server/src/updates/deployments/spec.js';
import type { FirmwareArtifact } from '../../../../server/src/updates/types.js';
import { deviceWithCertificate, type DeviceCredentials } from '../../../../server/test/helpers/devices.js';
import { addArtifact, publishTargets, setUpRepository, type SignedRepository } from '../../../../server/test/helpers/update-repository.js';
import { startAgentNode, type AgentNode } from '../../helpers/agent-node.js';

const admin = { name: 'operator:admin' };

/** A node's clock a test can move forward (stall timeouts) without sleeping. */
export class TestClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(this.nowMs());
  }
  nowMs(): number {
    return Date.now() + this.offsetMs;
  }
}

export interface OtaDevice {
  readonly name: string;
  readonly credentials: DeviceCredentials;
  readonly events: AgentEvent[];
  agent: FleetwardAgent;
  /** The job reports this device made, as `state` or `state/step` or `state:reason`. */
  reports(jobId: string): string[];
}

export interface DeviceOptions {
  readonly type: string;
  readonly firmware?: { readonly version: string; readonly securityVersion: number };
  /** The hardware the agent believes it is (default: its thing type). */
  readonly hardware?: string;
  readonly faults?: readonly UpdateFault[];
  readonly healthCheck?: () => boolean | Promise<boolean>;
}

/**
 * A real node (SQLite, listening on loopback: MQTT over mutual TLS, the HTTPS update routes), its
 * TUF repository set up by the documented offline workflow, and real agents trusting its root.
 */
export class OtaFleet {
  readonly n: AgentNode;
  readonly repo: SignedRepository;
  readonly rootFile: string;
  readonly clock: TestClock;
  readonly devices: OtaDevice[] = [];
  readonly #types = new Set<string>();

  private constructor(n: AgentNode, repo: SignedRepository, rootFile: string, clock: TestClock) {
    this.n = n;
    this.repo = repo;
    this.rootFile = rootFile;
    this.clock = clock;
  }

  /** `env`: node settings (by default the rollout runs only when a test ticks it). */
  static async start(env: Readonly<Record<string, string>> = {}): Promise<OtaFleet> {
    const clock = new TestClock();
    const n = await startAgentNode({ FLEETWARD_UPDATES_ROLLOUT_INTERVAL_SECONDS: '3600', ...env }, { clock });
    const repo = await setUpRepository(n.t.node.context);
    const rootFile = join(n.dir, 'root.json');
    await writeFile(rootFile, JSON.stringify(repo.rootJson));
    return new OtaFleet(n, repo, rootFile, clock);
  }

  get context(): AgentNode['t']['node']['context'] {
    return this.n.t.node.context;
  }

  async thingType(name: string): Promise<void> {
    if (this.#types.has(name)) return;
    // The simulator may have created it already.
    await this.context.identity.thingTypes.create({ name }, admin).catch((error: unknown) => {
      if ((error as { code?: string }).code !== 'FW_ERR_CONFLICT') throw error;
    });
    this.#types.add(name);
  }

  /** Uploads an artifact and signs it into the targets metadata (the offline step done in code). */
  async release(request: { name: string; version: string; securityVersion: number; hardware: readonly string[]; size?: number }): Promise<{ artifact: FirmwareArtifact; bytes: Buffer }> {
    for (const type of request.hardware) await this.thingType(type);
    const added = await addArtifact(this.context, { ...request, bytes: randomBytes(request.size ?? 48_000) });
    await publishTargets(this.context, this.repo.targets);
    return added;
  }

  /** A registered thing of `type` with its own certificate, written to its agent's state folder (no agent yet). */
  async register(name: string, type: string): Promise<DeviceCredentials> {
    await this.thingType(type);
    await this.context.identity.things.create({ name, type }, admin);
    const credentials = await deviceWithCertificate(this.context, name, { create: false });
    const state = join(this.n.dir, `state-${name}`);
    await mkdir(state, { recursive: true, mode: 0o700 });
    await chmod(state, 0o700);
    const files = credentialFiles(state);
    await writeFile(files.key, credentials.keyPem, { mode: 0o600 });
    await writeFile(files.cert, credentials.certPem);
    return credentials;
  }

  /** A registered thing and a real agent for it, started and online. */
  async device(name: string, options: DeviceOptions): Promise<OtaDevice> {
    const credentials = await this.register(name, options.type);
    const events: AgentEvent[] = [];
    const device: OtaDevice = {
      name,
      credentials,
      events,
      agent: undefined as unknown as FleetwardAgent,
      reports: (jobId) => events.flatMap((e) => (e.type === 'update' && e.jobId === jobId ? [`${e.update.state}${e.update.step ? `/${e.update.step}` : ''}${e.update.reason ? `:${e.update.reason}` : ''}`] : [])),
    };
    device.agent = await FleetwardAgent.start(this.agentConfig(name, options), this.agentOptions(events, options));
    this.devices.push(device);
    await until(() => device.agent.online, 10_000, `${name} online`);
    return device;
  }

  agentConfig(name: string, options: DeviceOptions): ReturnType<AgentNode['config']> {
    return this.n.config(name, {
      firmware: options.firmware ?? { version: '1.0.0', securityVersion: 1 },
      updates: { trustedRoot: this.rootFile, hardware: options.hardware ?? options.type, checkIntervalSeconds: 1 },
    });
  }

  agentOptions(events: AgentEvent[], options: DeviceOptions): AgentOptions {
    return {
      onEvent: (e) => events.push(e),
      ...(options.faults && { updateFaults: options.faults }),
      ...(options.healthCheck && { healthCheck: options.healthCheck }),
    };
  }

  async deploy(request: DeploymentRequest): Promise<Deployment> {
    return this.context.updates.deployments.create(request, admin);
  }

  async tick(): Promise<void> {
    await this.context.updates.deployments.tick();
  }

  async jobs(deployment: string): Promise<Map<string, DeploymentJob>> {
    const { jobs } = await this.context.updates.deployments.jobs(deployment, { limit: 1000 });
    return new Map(jobs.map((j) => [j.thing, j]));
  }

  async jobState(deployment: string, thing: string): Promise<JobState | undefined> {
    return (await this.jobs(deployment)).get(thing)?.state;
  }

  /** `updates.alert` audit events of a kind. */
  async alerts(kind: string): Promise<{ target: string | null; details: Record<string, unknown> }[]> {
    const rows = await this.context.store.db.selectFrom('audit_events').select(['target', 'details']).where('action', '=', 'updates.alert').execute();
    return rows
      .map((r) => ({ target: r.target, details: (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<string, unknown> }))
      .filter((a) => a.details.kind === kind);
  }

  async close(): Promise<void> {
    for (const d of this.devices) await d.agent.stop().catch(() => undefined);
    await this.n.close();
  }
}

export async function until(check: () => boolean | Promise<boolean>, ms = 15_000, what = 'a condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
