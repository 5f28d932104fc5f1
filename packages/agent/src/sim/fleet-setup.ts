import { randomBytes } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { certificateRequestPem } from '../identity/certificate-request.js';
import { softwareDeviceKey } from '../identity/device-key.js';
import { generateDeviceKey, keyPem } from '../identity/key-file.js';
import type { NodeApi } from './node-api.js';

/** What a simulated fleet shares: its provisioning template, the claim certificate built into "firmware", the telemetry contract. */
export interface FleetSetup {
  readonly run: string;
  readonly template: string;
  readonly claimKeyPem: string;
  readonly claimCertPem: string;
  readonly thingName: (index: number) => string;
  readonly telemetrySchema: object;
  /** The hostile profile's security profile on the fleet's group: the behaviours its attacks must trip (rule 5). */
  readonly detection: { readonly profile: string; readonly behaviors: readonly string[] } | null;
}

/**
 * What the hostile profile's attacks must be detected as (immediate behaviours: alert at once, no
 * action, so the rest of the run goes on): its flood, and its attempts on another device's topics.
 */
export function hostileProfile(name: string, ratePerSecond: number): { name: string; description: string; behaviors: readonly Record<string, unknown>[] } {
  // Above twice a device's own telemetry in a default 60 s window, and below what a flood gets through before the gateway cuts it off (~300).
  const flood = 250 + Math.ceil(2 * ratePerSecond * 60);
  return {
    name,
    description: 'fleetward-sim --profile hostile: what its attacks must trip',
    behaviors: [
      { name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: flood, immediate: true, severity: 'high' },
      { name: 'cross-thing', metric: 'cloud.authzFailures', operator: 'gte', value: 1, immediate: true, severity: 'medium' },
    ],
  };
}

/** The telemetry each simulated device sends: a data contract (rule 9) makes the gateway accept it. */
export const SIM_CONTRACT = {
  name: 'fleetward-sim-env',
  version: 1,
  description: 'Readings of simulated devices (fleetward-sim): temperature, a sequence number and the send time.',
  topic: 'things/${thing.name}/telemetry/env',
  retention: 'P1D',
  schema: {
    type: 'object',
    required: ['celsius', 'seq', 'sentAt'],
    properties: {
      celsius: { type: 'number', minimum: -60, maximum: 90 },
      seq: { type: 'integer', minimum: 0, maximum: 1_000_000_000 },
      sentAt: { type: 'integer', minimum: 0, maximum: 10_000_000_000_000 },
    },
  },
  fields: {
    celsius: { class: 'internal', purposes: ['monitoring'] },
    seq: { class: 'internal', purposes: ['monitoring'] },
    sentAt: { class: 'internal', purposes: ['monitoring'] },
  },
} as const;

/**
 * Sets up a fleet on the node through the operator API, as an operator would for a production batch:
 * a template whose name pattern admits this run's devices only, a claim certificate for it, and the
 * telemetry contract (applying an identical version again is a no-op). With `thingType` (the
 * devices' hardware, when they take updates) the type exists and every device is registered with
 * it: deployments and downloads match artifacts against the thing's type.
 */
export async function setUpFleet(api: NodeApi, options: { readonly thingType?: string | null; readonly hostile?: { readonly ratePerSecond: number } | null } = {}): Promise<FleetSetup> {
  const run = randomBytes(3).toString('hex');
  const template = `sim-${run}`;
  const thingType = options.thingType ?? null;
  // A hostile fleet lives in its own group, under a security profile its attacks must trip.
  const group = options.hostile ? template : null;
  let detection: FleetSetup['detection'] = null;
  if (group !== null) {
    const profile = hostileProfile(template, options.hostile?.ratePerSecond ?? 1);
    await api.call('POST', '/api/v1/groups', { name: group, description: 'fleetward-sim hostile fleet' });
    await api.call('POST', '/api/v1/monitor/profiles', profile);
    await api.call('PUT', `/api/v1/monitor/profiles/${template}/groups/${group}`);
    detection = { profile: template, behaviors: profile.behaviors.map((b) => String(b.name)) };
  }
  if (thingType !== null) {
    await api.call('POST', '/api/v1/thing-types', { name: thingType, description: 'Simulated devices (fleetward-sim --hardware)' }).catch((error: unknown) => {
      if (!(error instanceof FleetwardError && error.code === 'FW_ERR_CONFLICT')) throw error;
    });
  }
  await api.call('POST', '/api/v1/templates', { name: template, namePattern: `sim-${run}-[0-9]{5}`, ...(thingType !== null && { thingType }), ...(group !== null && { groups: [group] }) });
  const claimKey = generateDeviceKey();
  const claim = await api.call<{ certificatePem: string }>('POST', `/api/v1/templates/${template}/claim-certificates`, { csr: await certificateRequestPem(template, softwareDeviceKey(claimKey)), validityDays: 1 });
  await api.call('POST', '/api/v1/data/contracts', { contracts: [SIM_CONTRACT] });
  return {
    run,
    template,
    claimKeyPem: keyPem(claimKey),
    claimCertPem: claim.certificatePem,
    thingName: (index) => `sim-${run}-${String(index).padStart(5, '0')}`,
    // The device checks its readings against the same schema the platform enforces.
    telemetrySchema: { ...SIM_CONTRACT.schema, additionalProperties: false },
    detection,
  };
}
