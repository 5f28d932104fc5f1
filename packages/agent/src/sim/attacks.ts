import type { ListeningSocket } from '@fleetward/protocol';

/**
 * The hostile profile's attacks, each played from the attacker's side, and what the platform must
 * raise for each (rule 5): a behaviour of the security profile the run puts on its fleet, or a
 * built-in rule every device is held to. docs/agent.md lists them for operators.
 */
export const ATTACK_KINDS = ['cross-device', 'flood', 'firmware', 'ports', 'destinations', 'processes', 'clone', 'revoked'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

/** An alert the node must raise for an attacked device. */
export interface ExpectedDetection {
  readonly behavior: string;
  /** A built-in rule: its alert names no profile. Otherwise a behaviour of the fleet's profile. */
  readonly builtin: boolean;
}

const behaviour = (name: string): ExpectedDetection => ({ behavior: name, builtin: false });
const builtin = (name: string): ExpectedDetection => ({ behavior: name, builtin: true });

export const ATTACK_DETECTIONS: Readonly<Record<AttackKind, readonly ExpectedDetection[]>> = {
  'cross-device': [behaviour('cross-thing')],
  flood: [behaviour('flood')],
  firmware: [builtin('unknown-firmware')],
  ports: [builtin('new-listening-port'), behaviour('listening-not-allowed'), behaviour('listening-total-high')],
  destinations: [behaviour('destination-not-allowed'), behaviour('established-high')],
  processes: [behaviour('processes-high')],
  clone: [builtin('certificate-multiple-addresses'), builtin('new-source-address')],
  revoked: [behaviour('revoked-credential')],
};

/** Attempts the platform must refuse as well as detect; the others it lets through (a report, a valid certificate) and must only detect. */
export const REFUSED_ATTACKS: ReadonlySet<AttackKind> = new Set(['cross-device', 'flood', 'revoked']);

/** Judged when the device's window closes, against what earlier windows taught: played only once the device's baseline is learned. */
export const WINDOW_ATTACKS: ReadonlySet<AttackKind> = new Set(['ports', 'destinations', 'processes', 'clone']);

/** Played through the device's own metrics reports: what the compromised device runs, reported by its honest agent. */
export const REPORTED_ATTACKS = ['ports', 'destinations', 'processes'] as const satisfies readonly AttackKind[];
export type ReportedAttack = (typeof REPORTED_ATTACKS)[number];

/** The attacks one device plays: one device in ten has its certificate revoked (and keeps trying), so the rest of the fleet goes on. */
export function attacksOf(kinds: readonly AttackKind[], index: number): AttackKind[] {
  return kinds.filter((kind) => kind !== 'revoked' || index % 10 === 0);
}

/** Seconds between a hostile device's metrics reports: at least two per window of 10 s (the shortest a node allows). */
export const REPORT_SECONDS = 3;

/**
 * What a simulated hostile device's image runs, as its baseline reports show it, and what the
 * attacks add. Addresses are documentation ranges (RFC 5737): they are reported, never contacted.
 */
export const SIM_IMAGE = {
  listening: [
    { protocol: 'tcp', address: '0.0.0.0', port: 22 },
    { protocol: 'udp', address: '0.0.0.0', port: 5353 },
  ] as readonly ListeningSocket[],
  backend: '192.0.2.10',
  processes: 40,
} as const;

export const COMPROMISE = {
  /** A backdoor listener. */
  backdoor: { protocol: 'tcp', address: '0.0.0.0', port: 4444 } as ListeningSocket,
  /** Exfiltration: a fan-out of connections to an address outside the fleet's allowed block. */
  exfiltrationTo: '203.0.113.66',
  connections: 40,
  /** A miner's workers. */
  processes: 400,
} as const;

const ALLOWED_PORTS = SIM_IMAGE.listening.map((s) => s.port);
const ALLOWED_DESTINATIONS = ['192.0.2.0/24'];
// Between the image's figures and the compromised ones: a static threshold an operator would write for this image.
const MAX_ESTABLISHED = 20;
const MAX_PROCESSES = 200;

/** A security profile document, as `POST /api/v1/monitor/profiles` takes it. */
export interface ProfileDocument {
  readonly name: string;
  readonly description: string;
  readonly behaviors: readonly Readonly<Record<string, unknown>>[];
}

/**
 * The profile the hostile fleet runs under: a behaviour for every attack that no built-in rule
 * covers. Immediate behaviours alert the moment the gateway's counter passes the value; none has
 * an action, so a detection does not cut the rest of the run short.
 */
export function hostileProfile(name: string, ownMessagesPerMinute: number): ProfileDocument {
  // Twice a device's own traffic (telemetry and reports) in a default 60 s window, plus headroom, and well below what a flood gets through before the gateway cuts it off (~300).
  const flood = 150 + Math.ceil(2 * ownMessagesPerMinute);
  return {
    name,
    description: 'fleetward-sim --profile hostile: what its attacks must trip',
    behaviors: [
      { name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: flood, immediate: true, severity: 'high' },
      { name: 'cross-thing', metric: 'cloud.authzFailures', operator: 'gte', value: 1, immediate: true, severity: 'medium' },
      // Any refused credential: a device going on with a certificate the operator revoked.
      { name: 'revoked-credential', metric: 'cloud.authnFailures', operator: 'gte', value: 1, immediate: true, severity: 'high' },
      { name: 'listening-not-allowed', metric: 'device.listeningPorts', operator: 'not-in', ports: ALLOWED_PORTS, severity: 'high' },
      { name: 'listening-total-high', metric: 'device.listeningTotal', operator: 'gt', value: SIM_IMAGE.listening.length, severity: 'medium' },
      { name: 'destination-not-allowed', metric: 'device.destinations', operator: 'not-in', cidrs: ALLOWED_DESTINATIONS, severity: 'high' },
      { name: 'established-high', metric: 'device.established', operator: 'gt', value: MAX_ESTABLISHED, severity: 'medium' },
      { name: 'processes-high', metric: 'device.processes', operator: 'gt', value: MAX_PROCESSES, severity: 'medium' },
    ],
  };
}
