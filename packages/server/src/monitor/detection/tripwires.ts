import type { Detection } from '../types.js';
import { IMMEDIATE_METRICS, type Behavior, type ImmediateMetric, type SecurityProfile } from './security-profile.js';

/** An immediate behaviour, bound to one counter: it trips the moment the running window's count passes the value. */
export interface Tripwire {
  readonly profile: string;
  readonly behavior: Behavior;
  readonly metric: ImmediateMetric;
  readonly value: number;
  readonly inclusive: boolean;
}

/** The gateway's running counts of a device in the current window, by the counter names of IMMEDIATE_METRICS. */
export type RunningCounts = Readonly<Record<'messagesIn' | 'bytesIn' | 'authzFailures' | 'authnFailures' | 'connectAttempts', number>>;

/** Each thing's tripwires: the immediate behaviours of the profiles its groups carry. */
export function tripwiresFor(profiles: ReadonlyMap<string, SecurityProfile>, byThing: ReadonlyMap<string, readonly string[]>): Map<string, readonly Tripwire[]> {
  const byProfile = new Map<string, Tripwire[]>();
  for (const [name, profile] of profiles) {
    const wires = profile.behaviors.flatMap((behavior): Tripwire[] => {
      if (!behavior.immediate || behavior.kind !== 'number' || !('value' in behavior.threshold)) return [];
      if (!(IMMEDIATE_METRICS as readonly string[]).includes(behavior.metric)) return [];
      return [{ profile: name, behavior, metric: behavior.metric as ImmediateMetric, value: behavior.threshold.value, inclusive: behavior.operator === 'gte' }];
    });
    if (wires.length > 0) byProfile.set(name, wires);
  }
  const byThingWires = new Map<string, readonly Tripwire[]>();
  if (byProfile.size === 0) return byThingWires;
  for (const [thing, names] of byThing) {
    const wires = names.flatMap((n) => byProfile.get(n) ?? []);
    if (wires.length > 0) byThingWires.set(thing, wires);
  }
  return byThingWires;
}

/** The count a tripwire looks at, if it has passed the value; undefined otherwise. */
export function tripped(wire: Tripwire, counts: RunningCounts): number | undefined {
  const observed = counts[wire.metric.slice('cloud.'.length) as keyof RunningCounts];
  return (wire.inclusive ? observed >= wire.value : observed > wire.value) ? observed : undefined;
}

/** The detection a tripped wire raises: the same behaviour and dedupe key as when the window closes, so one alert. */
export function tripwireDetection(thing: string, wire: Tripwire, observed: number, at: Date): Detection {
  const { behavior } = wire;
  return {
    thing,
    behavior: behavior.name,
    profile: wire.profile,
    severity: behavior.severity,
    metric: behavior.metric,
    value: observed,
    message: `${thing}: ${behavior.metric} reached ${observed} in the running window (${wire.inclusive ? '≥' : '>'} ${wire.value}, immediate)`,
    at: at.toISOString(),
    dedupeKey: `${thing}/${wire.profile}/${behavior.name}`,
    actions: behavior.actions,
  };
}
