import { ATTACK_DETECTIONS, REFUSED_ATTACKS, WINDOW_ATTACKS, type AttackKind } from './attacks.js';
import { awaitBaselines, collectDetections, type DetectionTally } from './detection-check.js';
import type { DeviceAttacker } from './device-attacker.js';
import type { AttackPlan } from './fleet-setup.js';
import { inBatches } from './in-batches.js';
import type { NodeApi } from './node-api.js';

/** One attack kind over the fleet. */
export interface AttackSummary {
  /** Attempts made: publishes, subscriptions, floods, sessions, reports. */
  readonly attempted: number;
  /** Of those, how many the platform refused; null for attacks it lets through (a report, a valid certificate) and must only detect. */
  readonly refused: number | null;
  /** (device, behaviour) pairs that must raise an alert, and those that did. */
  readonly expected: number;
  readonly detected: number;
  /** `thing behaviour` of the first missing detections. */
  readonly missed: readonly string[];
  /** Why the attack was not played (the node cannot judge it here). */
  readonly skipped: string | null;
}

export interface AttacksSummary {
  /** Attempts the platform must refuse, and those it refused (cross-device, flood, revoked). */
  readonly attempted: number;
  readonly refused: number;
  readonly detected: number;
  readonly expectedDetections: number;
  readonly byKind: Readonly<Partial<Record<AttackKind, AttackSummary>>>;
  /** `thing behaviour` of alerts of the checked behaviours on devices not attacked that way: false positives. */
  readonly unexpected: readonly string[];
}

export const NO_ATTACKS: AttacksSummary = { attempted: 0, refused: 0, detected: 0, expectedDetections: 0, byKind: {}, unexpected: [] };

/** A device of the hostile fleet. */
export interface HostileDevice {
  readonly name: string;
  readonly attacker: DeviceAttacker;
}

/** A baseline needs one closed window after the device's first report: 60 s by default, bounded for longer windows. */
const BASELINE_WAIT_MS = 180_000;
/** The node's default window, when no stored window has shown its length yet. */
const DEFAULT_WINDOW_MS = 60_000;
/** Slack for the last alerts to be written once raised. */
const SETTLE_MS = 5_000;

/**
 * The hostile profile over the fleet: every device's attacks in phases (those judged at once; then,
 * once every baseline is learned, those judged against it; the revocations last), and the alerts
 * the node raised for them, tallied per attack kind.
 */
export class HostileCampaign {
  readonly #api: NodeApi;
  readonly #devices: readonly HostileDevice[];
  readonly #plan: AttackPlan;
  readonly #requested: readonly AttackKind[];
  readonly #profile: string;
  readonly #concurrency: number;
  #windowMs: number | null = null;
  #tally: DetectionTally | null = null;

  constructor(api: NodeApi, devices: readonly HostileDevice[], plan: AttackPlan, requested: readonly AttackKind[], profile: string, concurrency: number) {
    this.#api = api;
    this.#devices = devices;
    this.#plan = plan;
    this.#requested = requested;
    this.#profile = profile;
    this.#concurrency = concurrency;
  }

  /** Plays every device's attacks, then waits for their detections (up to a window and the node's closing check, for those judged then). */
  async play(): Promise<void> {
    const devices = this.#devices;
    await inBatches(devices, this.#concurrency, (d, i) => d.attacker.beforeBaseline(devices[(i + 1) % devices.length]?.name ?? d.name));
    const windowed = this.#plan.kinds.some((kind) => WINDOW_ATTACKS.has(kind));
    if (windowed) {
      await this.#awaitBaselines();
      await inBatches(devices, this.#concurrency, (d) => d.attacker.afterBaseline());
    }
    await inBatches(devices, this.#concurrency, (d) => d.attacker.revoked());
    const windowMs = this.#windowMs ?? DEFAULT_WINDOW_MS;
    // A window closes at its end, and the node checks for that every window/4 (at most 5 s).
    const deadline = Date.now() + SETTLE_MS + (windowed ? windowMs + Math.min(5_000, windowMs / 4) : 0);
    const plans = devices.map((d) => ({ thing: d.name, kinds: [...d.attacker.kinds] }));
    this.#tally = await collectDetections(this.#api, plans, this.#profile, deadline, this.#concurrency);
  }

  summary(): AttacksSummary {
    const byKind: Partial<Record<AttackKind, AttackSummary>> = {};
    for (const kind of this.#requested) byKind[kind] = this.#kindSummary(kind);
    const kinds = Object.values(byKind);
    const refusable = kinds.filter((k) => k.refused !== null);
    return {
      attempted: refusable.reduce((n, k) => n + k.attempted, 0),
      refused: refusable.reduce((n, k) => n + (k.refused ?? 0), 0),
      detected: kinds.reduce((n, k) => n + k.detected, 0),
      expectedDetections: kinds.reduce((n, k) => n + k.expected, 0),
      byKind,
      unexpected: this.#tally?.unexpected ?? [],
    };
  }

  #kindSummary(kind: AttackKind): AttackSummary {
    const counts = this.#devices.map((d) => d.attacker.counts.get(kind) ?? { attempted: 0, refused: 0 });
    const tally = this.#tally?.byKind.get(kind);
    return {
      attempted: counts.reduce((n, c) => n + c.attempted, 0),
      refused: REFUSED_ATTACKS.has(kind) ? counts.reduce((n, c) => n + c.refused, 0) : null,
      // Before the tally (a run cut short) every planned detection is still expected, and none seen.
      expected: tally?.expected ?? this.#devices.filter((d) => d.attacker.kinds.has(kind)).length * ATTACK_DETECTIONS[kind].length,
      detected: tally?.detected ?? 0,
      missed: tally?.missed ?? [],
      skipped: this.#plan.skipped.get(kind) ?? null,
    };
  }

  async #awaitBaselines(): Promise<void> {
    const { pending, windowMs } = await awaitBaselines(
      this.#api,
      this.#devices.map((d) => d.name),
      Date.now() + BASELINE_WAIT_MS,
      this.#concurrency,
    );
    this.#windowMs = windowMs;
    // Played all the same: if the node never stores a window, its detections are missing, and the run must say so.
    for (const device of this.#devices.filter((d) => pending.includes(d.name))) device.attacker.fail(new Error(`the node stored no window with this device's metrics report within ${BASELINE_WAIT_MS / 1000} s: its baseline may not be learned`));
  }
}
