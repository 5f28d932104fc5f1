import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { FleetwardError } from '@fleetward/protocol';
import { certificateRequestPem } from '../identity/certificate-request.js';
import { softwareDeviceKey } from '../identity/device-key.js';
import { generateDeviceKey, keyPem } from '../identity/key-file.js';
import { hostileProfile, REPORT_SECONDS, type AttackKind } from './attacks.js';
import type { NodeApi } from './node-api.js';
import type { SimOptions } from './sim-options.js';
import { cloneSource } from './stolen-session.js';

/** What a simulated fleet shares: its provisioning template, the claim certificate built into "firmware", the telemetry contract. */
export interface FleetSetup {
  readonly run: string;
  readonly template: string;
  readonly claimKeyPem: string;
  readonly claimCertPem: string;
  readonly thingName: (index: number) => string;
  readonly telemetrySchema: object;
  /** The hostile profile's security profile on the fleet's group, whose behaviours its attacks must trip (rule 5). */
  readonly detectionProfile: string | null;
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
 * devices' hardware, when they take updates or report an unsigned image) the type exists and every
 * device is registered with it: deployments, downloads and the inventory's verdict on an image
 * match artifacts against the thing's type.
 */
export async function setUpFleet(api: NodeApi, options: { readonly thingType?: string | null; readonly hostile?: { readonly ratePerSecond: number } | null } = {}): Promise<FleetSetup> {
  const run = randomBytes(3).toString('hex');
  const template = `sim-${run}`;
  const thingType = options.thingType ?? null;
  // A hostile fleet lives in its own group, under a security profile its attacks must trip.
  const group = options.hostile ? template : null;
  if (group !== null) {
    // A hostile device's own traffic: its telemetry and its metrics reports.
    const profile = hostileProfile(template, (options.hostile?.ratePerSecond ?? 1) * 60 + 60 / REPORT_SECONDS);
    await api.call('POST', '/api/v1/groups', { name: group, description: 'fleetward-sim hostile fleet' });
    await api.call('POST', '/api/v1/monitor/profiles', profile);
    await api.call('PUT', `/api/v1/monitor/profiles/${template}/groups/${group}`);
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
    detectionProfile: group,
  };
}

/** The hostile profile's attacks as this node and machine can judge them: those to play, and why the others cannot be. */
export interface AttackPlan {
  readonly kinds: readonly AttackKind[];
  readonly skipped: ReadonlyMap<AttackKind, string>;
  readonly cloneSource: ((index: number) => string) | null;
}

/**
 * Which of the requested attacks can be judged here. An image can be "unknown" only against signed
 * firmware for the devices' type; a clone needs a second source address of this machine, so a
 * gateway on its loopback. An attack named in --attacks that cannot be played refuses the run
 * (FW_ERR_CONFLICT): the check asked for would not happen. Left to the default, it is skipped and
 * the summary says why.
 */
export async function planAttacks(api: NodeApi, options: Pick<SimOptions, 'attacks' | 'attacksNamed' | 'hardware'>, mqttUrl: string): Promise<AttackPlan> {
  const skipped = new Map<AttackKind, string>();
  if (options.attacks.includes('firmware') && !(await signedFor(api, options.hardware))) {
    skipped.set('firmware', `nothing is signed for hardware ${options.hardware}: the node has no image to compare a device's with (release and sign firmware for it, or pass --hardware)`);
  }
  const source = cloneSource(mqttUrl);
  if (options.attacks.includes('clone')) {
    if (source === null) skipped.set('clone', 'the gateway is not on this machine\'s IPv4 loopback (127.0.0.1 or localhost): a clone needs a second source address there (127.0.0.2...)');
    else if (!(await canBind(source(0)))) skipped.set('clone', `this machine has no loopback address ${source(0)} to connect a clone from`);
  }
  const named = [...skipped].find(([kind]) => options.attacksNamed && options.attacks.includes(kind));
  if (named !== undefined) throw new FleetwardError('FW_ERR_CONFLICT', `--attacks ${named[0]} cannot be played against this node: ${named[1]}`);
  return { kinds: options.attacks.filter((kind) => !skipped.has(kind)), skipped, cloneSource: source };
}

async function signedFor(api: NodeApi, hardware: string): Promise<boolean> {
  const { artifacts } = await api.call<{ artifacts: readonly { readonly hardware: readonly string[]; readonly signed: boolean }[] }>('GET', '/api/v1/firmware');
  return artifacts.some((a) => a.signed && a.hardware.includes(hardware));
}

/** Whether this machine has the address (a listener on it for an instant, on loopback: no traffic). */
function canBind(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(0, address, () => server.close(() => resolve(true)));
  });
}
