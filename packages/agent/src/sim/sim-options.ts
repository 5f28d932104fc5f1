import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FleetwardError } from '@fleetward/protocol';
import { ATTACK_KINDS, type AttackKind } from './attacks.js';

export const PROFILES = ['normal', 'faulty', 'hostile'] as const;
export type Profile = (typeof PROFILES)[number];

export interface SimOptions {
  readonly devices: number;
  readonly durationSeconds: number;
  readonly profile: Profile;
  /** Telemetry messages per second per device. */
  readonly rate: number;
  readonly json: boolean;
  /** Devices provisioning at the same time (the gateway's handshake limit applies either way). */
  readonly concurrency: number;
  /** The gateway; default `mqtts://<API host>:<mqtt.port from the node's configuration>`. */
  readonly mqttUrl: string | null;
  /** The fleet's TUF root (`root.json`): with it every device takes update jobs into A/B slots (folders). */
  readonly trustedRoot: string | null;
  /** The simulated devices' hardware type (thing type), matched against targets' signed `hardware`. */
  readonly hardware: string;
  /** The hostile profile's attacks (default all of them; none for the other profiles). */
  readonly attacks: readonly AttackKind[];
  /** Whether `--attacks` named them: an attack named there that the node cannot judge refuses the run. */
  readonly attacksNamed: boolean;
}

export const SIM_USAGE = 'usage: fleetward-sim --devices N --duration SECONDS [--profile normal|faulty|hostile] [--rate MSG_PER_S] [--concurrency N] [--mqtt-url mqtts://host:port] [--trusted-root root.json] [--hardware TYPE] [--attacks all|KIND,...] [--json]';

export function parseSimOptions(argv: readonly string[]): SimOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      options: { devices: { type: 'string' }, duration: { type: 'string' }, profile: { type: 'string' }, rate: { type: 'string' }, concurrency: { type: 'string' }, 'mqtt-url': { type: 'string' }, 'trusted-root': { type: 'string' }, hardware: { type: 'string' }, attacks: { type: 'string' }, json: { type: 'boolean' } },
    }).values;
  } catch (error) {
    throw new FleetwardError('FW_ERR_USAGE', (error as Error).message);
  }
  const profile = (values.profile as string | undefined) ?? 'normal';
  if (!(PROFILES as readonly string[]).includes(profile)) throw new FleetwardError('FW_ERR_USAGE', `--profile must be one of ${PROFILES.join(', ')}`);
  const mqttUrl = (values['mqtt-url'] as string | undefined) ?? null;
  if (mqttUrl !== null && !/^(mqtts|wss):\/\//.test(mqttUrl)) throw new FleetwardError('FW_ERR_USAGE', '--mqtt-url must be mqtts:// or wss://');
  const hardware = (values.hardware as string | undefined) ?? 'sim-device';
  if (!/^[A-Za-z0-9:_-]{1,128}$/.test(hardware)) throw new FleetwardError('FW_ERR_USAGE', '--hardware must be 1 to 128 letters, digits, -, _ or :');
  const attacks = parseAttacks(values.attacks as string | undefined, profile as Profile);
  return {
    devices: number(values.devices, '--devices', 1, 100_000, true),
    durationSeconds: number(values.duration, '--duration', 1, 86_400, true),
    profile: profile as Profile,
    rate: values.rate === undefined ? 0.1 : number(values.rate, '--rate', 0.001, 1_000, false),
    json: values.json === true,
    concurrency: values.concurrency === undefined ? 50 : number(values.concurrency, '--concurrency', 1, 10_000, true),
    mqttUrl,
    trustedRoot: values['trusted-root'] === undefined ? null : resolve(values['trusted-root'] as string),
    hardware,
    attacks,
    attacksNamed: values.attacks !== undefined && values.attacks !== 'all',
  };
}

/** `--attacks flood,ports` (or `all`, the default): only with the hostile profile, whose attacks they are. */
function parseAttacks(value: string | undefined, profile: Profile): readonly AttackKind[] {
  if (value !== undefined && profile !== 'hostile') throw new FleetwardError('FW_ERR_USAGE', '--attacks needs --profile hostile');
  if (profile !== 'hostile') return [];
  if (value === undefined || value === 'all') return ATTACK_KINDS;
  const named = value.split(',').map((kind) => kind.trim());
  const unknown = named.filter((kind) => !(ATTACK_KINDS as readonly string[]).includes(kind));
  if (unknown.length > 0 || named.length === 0) throw new FleetwardError('FW_ERR_USAGE', `--attacks must be all or a comma-separated list of ${ATTACK_KINDS.join(', ')}${unknown.length > 0 ? ` (not ${unknown.join(', ')})` : ''}`);
  // In the catalogue's order, once each: the order the attacks are played in does not depend on how they were named.
  return ATTACK_KINDS.filter((kind) => named.includes(kind));
}

function number(value: unknown, flag: string, min: number, max: number, whole: boolean): number {
  const n = typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) throw new FleetwardError('FW_ERR_USAGE', `${flag} must be ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  return n;
}
