import { ATTACK_DETECTIONS, type AttackKind, type ExpectedDetection } from './attacks.js';
import { inBatches } from './in-batches.js';
import type { NodeApi } from './node-api.js';

/** The attacks one device played (or was meant to). */
export interface DevicePlan {
  readonly thing: string;
  readonly kinds: readonly AttackKind[];
}

export interface KindTally {
  readonly expected: number;
  readonly detected: number;
  /** `thing behaviour` of the first detections missing. */
  readonly missed: readonly string[];
}

export interface DetectionTally {
  readonly byKind: ReadonlyMap<AttackKind, KindTally>;
  /** `thing behaviour` of alerts of the checked behaviours on devices not attacked that way: false positives. */
  readonly unexpected: readonly string[];
}

const LISTED = 10;

/** How an alert is matched: built-in rules have no profile, behaviours name the fleet's. */
function keyOf(detection: ExpectedDetection, profile: string): string {
  return `${detection.builtin ? '' : profile}/${detection.behavior}`;
}

/**
 * Counts, per attack kind, the (device, behaviour) pairs the node raised an alert for, from each
 * device's alerts (`seen`: keys `profile/behaviour`, profile empty for built-in rules). Pure.
 */
export function tallyDetections(plans: readonly DevicePlan[], seen: ReadonlyMap<string, ReadonlySet<string>>, profile: string): DetectionTally {
  const byKind = new Map<AttackKind, { expected: number; detected: number; missed: string[] }>();
  const checked = new Map(Object.values(ATTACK_DETECTIONS).flat().map((d) => [keyOf(d, profile), d.behavior]));
  const unexpected: string[] = [];
  for (const { thing, kinds } of plans) {
    const alerts = seen.get(thing) ?? new Set<string>();
    const wanted = new Set<string>();
    for (const kind of kinds) {
      const tally = byKind.get(kind) ?? { expected: 0, detected: 0, missed: [] };
      byKind.set(kind, tally);
      for (const detection of ATTACK_DETECTIONS[kind]) {
        const key = keyOf(detection, profile);
        wanted.add(key);
        tally.expected += 1;
        if (alerts.has(key)) tally.detected += 1;
        else if (tally.missed.length < LISTED) tally.missed.push(`${thing} ${detection.behavior}`);
      }
    }
    for (const key of alerts) if (checked.has(key) && !wanted.has(key) && unexpected.length < LISTED) unexpected.push(`${thing} ${checked.get(key) ?? key}`);
  }
  return { byKind, unexpected };
}

/** A device's alerts as `profile/behaviour` keys (profile empty for built-in rules). */
async function alertsOf(api: NodeApi, thing: string): Promise<Set<string>> {
  const { alerts } = await api.call<{ alerts: readonly { readonly profile: string | null; readonly behavior: string }[] }>('GET', `/api/v1/alerts?thing=${encodeURIComponent(thing)}&limit=500`);
  return new Set(alerts.map((a) => `${a.profile ?? ''}/${a.behavior}`));
}

/**
 * Polls every device's alerts until every expected detection is there or `deadline` (epoch ms)
 * passes, then tallies them. Detections arrive when a window closes: the poll is the wait.
 */
export async function collectDetections(api: NodeApi, plans: readonly DevicePlan[], profile: string, deadline: number, concurrency: number): Promise<DetectionTally> {
  for (;;) {
    const seen = new Map<string, ReadonlySet<string>>();
    await inBatches(plans, concurrency, async ({ thing }) => void seen.set(thing, await alertsOf(api, thing)));
    const tally = tallyDetections(plans, seen, profile);
    const complete = [...tally.byKind.values()].every((k) => k.detected === k.expected);
    if (complete || Date.now() > deadline) return tally;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Waits until each device's baseline is learned: a stored window of it holds a metrics report.
 * The node evaluates a window before it stores it, so by then its ports and source addresses are
 * known, and a change is new. Returns the devices still waiting at `deadline`, and the node's
 * window length as its stored windows show it (null before any).
 */
export async function awaitBaselines(api: NodeApi, things: readonly string[], deadline: number, concurrency: number): Promise<{ readonly pending: readonly string[]; readonly windowMs: number | null }> {
  let pending = [...things];
  let windowMs: number | null = null;
  while (pending.length > 0 && Date.now() <= deadline) {
    const learned = new Set<string>();
    await inBatches(pending, concurrency, async (thing) => {
      const { windows } = await api.call<{ windows: readonly { readonly windowStart: string; readonly windowEnd: string; readonly device: object | null }[] }>('GET', `/api/v1/monitor/metrics/things/${encodeURIComponent(thing)}`);
      const reported = windows.find((w) => w.device !== null);
      if (reported === undefined) return;
      learned.add(thing);
      windowMs = Date.parse(reported.windowEnd) - Date.parse(reported.windowStart);
    });
    pending = pending.filter((t) => !learned.has(t));
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 1_000));
  }
  return { pending, windowMs };
}
