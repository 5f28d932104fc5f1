import type { DeviceMetricsReport } from '@fleetward/protocol';
import type { HealthProvider, HealthSample } from './deployments/index.js';

/** One metrics report, reduced to what health gating compares. */
interface Reading {
  readonly at: number;
  readonly authFailures: number;
  readonly restarts: number;
  readonly uptimeSeconds: number;
  readonly ports: ReadonlySet<string>;
}

/** Readings kept per device: enough to reach back over a rollout phase at the agent's default report rate. */
const MAX_READINGS = 48;
/** Gateway denials kept per device (their times): beyond it the oldest are forgotten. */
const MAX_DENIALS = 256;
const MAX_DEVICES = 200_000;

/**
 * Health samples for gated rollouts, from the security metrics devices report
 * (`$fw/things/{thing}/metrics`) and the gateway's own refusals: authorization failures (the
 * device's count plus publishes and subscribes the gateway denied), listening ports not seen
 * before and reboots (an agent restart or uptime going back), each counted since a given time. Kept in memory
 * on the node the device reports to; a device without a reading from before that time is left out,
 * so it counts in no cohort.
 */
export class DeviceHealth implements HealthProvider {
  readonly #readings = new Map<string, Reading[]>();
  /** When the gateway refused the device a publish or subscribe (policy), newest last. */
  readonly #denials = new Map<string, number[]>();

  record(thing: string, report: DeviceMetricsReport, receivedAt: Date): void {
    let readings = this.#readings.get(thing);
    if (readings === undefined) {
      if (this.#readings.size >= MAX_DEVICES) return;
      readings = [];
      this.#readings.set(thing, readings);
    }
    readings.push({
      at: receivedAt.getTime(),
      authFailures: report.authFailures,
      restarts: report.agentRestarts,
      uptimeSeconds: report.uptimeSeconds,
      ports: new Set(report.network.listening.map((s) => `${s.protocol}/${s.port}`)),
    });
    if (readings.length > MAX_READINGS) readings.splice(0, readings.length - MAX_READINGS);
  }

  /** The gateway refused the device a publish or subscribe: an authorization failure the device may not count itself. */
  denied(thing: string, at: Date): void {
    let times = this.#denials.get(thing);
    if (times === undefined) {
      if (this.#denials.size >= MAX_DEVICES) return;
      times = [];
      this.#denials.set(thing, times);
    }
    times.push(at.getTime());
    if (times.length > MAX_DENIALS) times.splice(0, times.length - MAX_DENIALS);
  }

  forget(thing: string): void {
    this.#readings.delete(thing);
    this.#denials.delete(thing);
  }

  samples(things: readonly string[], since: Date): Promise<ReadonlyMap<string, HealthSample>> {
    const samples = new Map<string, HealthSample>();
    for (const thing of things) {
      const sample = sampleOf(this.#readings.get(thing) ?? [], since.getTime());
      if (sample === null) continue;
      const denials = (this.#denials.get(thing) ?? []).filter((at) => at > since.getTime()).length;
      samples.set(thing, { ...sample, authFailures: sample.authFailures + denials });
    }
    return Promise.resolve(samples);
  }
}

/** What changed between the last reading before `since` and the latest one; null without both. */
export function sampleOf(readings: readonly Reading[], since: number): HealthSample | null {
  const baseIndex = readings.findLastIndex((r) => r.at <= since);
  const latest = readings.at(-1);
  if (baseIndex < 0 || latest === undefined || latest === readings[baseIndex]) return null;
  const base = readings[baseIndex] as Reading;
  let reboots = 0;
  let authFailures = 0;
  for (let i = baseIndex + 1; i < readings.length; i += 1) {
    const [before, after] = [readings[i - 1] as Reading, readings[i] as Reading];
    const restarted = after.restarts > before.restarts || after.uptimeSeconds < before.uptimeSeconds;
    if (restarted) reboots += 1;
    // Counters restart from zero with the agent: what is counted after a restart is all new.
    authFailures += after.authFailures >= before.authFailures ? after.authFailures - before.authFailures : after.authFailures;
  }
  const newListeningPorts = [...latest.ports].filter((p) => !base.ports.has(p)).length;
  return { authFailures, newListeningPorts, reboots };
}
