import type { PendingJobs } from '@fleetward/protocol';
import { closeContext, openHome, type NodeContext } from '../../../src/node.js';
import type { FirmwareArtifact, UpdateAlert } from '../../../src/updates/types.js';
import { Deployments, type DeploymentsDependencies } from '../../../src/updates/deployments/index.js';
import { testEnvironment, TestClock, type Dialect } from '../../helpers/environment.js';

export const alice = { name: 'operator:alice', source: '127.0.0.1' };

export function artifact(overrides: Partial<FirmwareArtifact> = {}): FirmwareArtifact {
  return {
    target: 'thermo-fw-1.4.2',
    name: 'thermo-fw',
    version: '1.4.2',
    securityVersion: 7,
    sha256: 'a'.repeat(64),
    size: 1024,
    hardware: ['thermostat'],
    releaseNotes: null,
    securityRelease: false,
    hasSbom: false,
    signed: true,
    createdAt: '2026-11-01T00:00:00.000Z',
    createdBy: 'operator:alice',
    ...overrides,
  };
}

/** A fresh node context with Deployments wired to in-memory artifacts, notifications and alerts. */
export interface Harness {
  readonly context: NodeContext;
  readonly clock: TestClock;
  readonly artifacts: Map<string, FirmwareArtifact>;
  readonly notified: { thing: string; jobs: PendingJobs }[];
  readonly alerts: UpdateAlert[];
  deployments(extra?: Partial<DeploymentsDependencies>): Deployments;
  /** Registers things of a type, optionally in a group, with the software they report. */
  things(names: readonly string[], options?: { type?: string | null; group?: string; software?: { version: string; securityVersion: number | null } }): Promise<void>;
  cleanup(): Promise<void>;
}

export async function harness(dialect: Dialect): Promise<Harness> {
  const env = await testEnvironment(dialect);
  const clock = new TestClock();
  const { context } = await openHome(env.config(), { create: true, clock });
  const artifacts = new Map<string, FirmwareArtifact>([[artifact().target, artifact()]]);
  const notified: { thing: string; jobs: PendingJobs }[] = [];
  const alerts: UpdateAlert[] = [];
  const types = new Set<string>();
  const groups = new Set<string>();
  return {
    context,
    clock,
    artifacts,
    notified,
    alerts,
    deployments: (extra = {}) =>
      new Deployments({
        store: context.store,
        audit: context.audit,
        clock,
        things: context.identity.things,
        artifacts: { get: (target) => Promise.resolve(artifacts.get(target) ?? null) },
        notify: (thing, jobs) => notified.push({ thing, jobs }),
        jobUrls: { metadataUrl: 'https://fleet.example:8443/updates/metadata/', targetsUrl: 'https://fleet.example:8443/updates/targets/' },
        raiseAlert: (alert) => {
          alerts.push(alert);
          return Promise.resolve();
        },
        ...extra,
      }),
    async things(names, options = {}) {
      const type = options.type === undefined ? 'thermostat' : options.type;
      if (type !== null && !types.has(type)) {
        types.add(type);
        await context.identity.thingTypes.create({ name: type }, alice);
      }
      if (options.group !== undefined && !groups.has(options.group)) {
        groups.add(options.group);
        await context.identity.groups.create({ name: options.group }, alice);
      }
      for (const name of names) {
        await context.identity.things.create({ name, ...(type !== null && { type }), ...(options.group !== undefined && { groups: [options.group] }) }, alice);
        if (options.software) {
          await context.store.db
            .insertInto('device_software')
            .values({ thing: name, firmware_version: options.software.version, security_version: options.software.securityVersion, image_hash: null, agent_version: '1.0.0', authorized: 1, reported_at: clock.now().toISOString() })
            .execute();
        }
      }
    },
    async cleanup() {
      await closeContext(context);
      await env.cleanup();
    },
  };
}

export const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
