import { performance } from 'node:perf_hooks';
import { DEFAULT_THROTTLE_SETTINGS, Throttle } from '../../packages/server/src/access/throttling/index.js';
import { markdownTable, median, progress, row, type Scenario } from '../lib/report.js';

const RUNS = 5;
const PUBLISHES = 5_000_000;
const HANDSHAKES = 500_000;
const DEVICES = 10_000;
/** The gateway's budget per delivered message; the throttle should cost at most 5 % of it. */
const MESSAGE_BUDGET_NS = 5_000;
const PUBLISH_TARGET = 1e9 / (MESSAGE_BUDGET_NS * 0.05);

type Measure = (throttle: Throttle) => number;

/**
 * Decisions per second of one loop. Time advances 1 ms every 1,000 calls, as on a busy node, so
 * buckets refill on the way and the code paths are those of production, not of a frozen clock.
 */
function timed(calls: number, decide: (i: number, now: number) => unknown): number {
  const start = 1_700_000_000_000;
  const began = performance.now();
  for (let i = 0; i < calls; i++) decide(i, start + (i >> 10));
  return calls / ((performance.now() - began) / 1000);
}

const names = Array.from({ length: DEVICES }, (_, i) => `sensor-${i}`);
const addresses = Array.from({ length: DEVICES }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);

const measures: Readonly<Record<string, Measure>> = {
  // One device well under its rate: the steady state of a connected device.
  oneDevice: (t) => timed(PUBLISHES, (_i, now) => t.allowPublish('sensor-1', 200, now)),
  // 10,000 devices in turn: a Map lookup that misses the CPU cache, as on a full node.
  fleet: (t) => timed(PUBLISHES, (i, now) => t.allowPublish(names[i % DEVICES] as string, 200, now)),
  // One device flooding far over its rate: every call refused and counted for the audit trail.
  flood: (t) => timed(PUBLISHES, (_i, now) => t.allowPublish('flood', 200, now)),
  handshakes: (t) => timed(HANDSHAKES, (i, now) => t.allowHandshake(addresses[i % DEVICES] as string, now)),
};

function fresh(): Throttle {
  // Generous device rates so that the fleet loops measure the allow path; the flood device is refused.
  return new Throttle({ ...DEFAULT_THROTTLE_SETTINGS, messagesPerSecond: 1_000_000, messageBurst: 10_000_000, bytesPerSecond: 1024 ** 3, byteBurst: 1024 ** 3, handshakesPerSecond: 1_000_000, handshakeBurst: 10_000_000 }, 1_700_000_000_000);
}

function floodThrottle(): Throttle {
  return new Throttle({ ...DEFAULT_THROTTLE_SETTINGS, rateDisconnectAfterRefusals: 1_000_000 }, 1_700_000_000_000);
}

const ns = (perSecond: number): string => (1e9 / perSecond).toFixed(0);

export const throttle: Scenario = {
  name: 'throttle',
  description: 'throttling in-process: allowPublish and allowHandshake decisions per second (ns per decision in the summary)',
  async run() {
    const results: Record<string, number[]> = { oneDevice: [], fleet: [], flood: [], handshakes: [] };
    for (let run = 1; run <= RUNS; run++) {
      for (const [name, measure] of Object.entries(measures)) {
        (results[name] as number[]).push(measure(name === 'flood' ? floodThrottle() : fresh()));
      }
      progress(`run ${run}/${RUNS}: allowPublish ${ns(results['fleet']?.at(-1) ?? 1)} ns over ${DEVICES.toLocaleString('en-US')} devices`);
      await Promise.resolve();
    }
    const { oneDevice = [], fleet = [], flood = [], handshakes = [] } = results;
    const summary = markdownTable(
      ['Decision', 'ns per decision (median)', `Share of a ${MESSAGE_BUDGET_NS / 1000} µs message budget`],
      [
        ['allowPublish, one device', ns(median(oneDevice)), `${((1e9 / median(oneDevice) / MESSAGE_BUDGET_NS) * 100).toFixed(1)} %`],
        [`allowPublish, ${DEVICES.toLocaleString('en-US')} devices`, ns(median(fleet)), `${((1e9 / median(fleet) / MESSAGE_BUDGET_NS) * 100).toFixed(1)} %`],
        ['allowPublish, refused (flood, audited)', ns(median(flood)), `${((1e9 / median(flood) / MESSAGE_BUDGET_NS) * 100).toFixed(1)} %`],
        [`allowHandshake, ${DEVICES.toLocaleString('en-US')} IPv4 sources`, ns(median(handshakes)), '– (once per connection)'],
      ],
    );
    return {
      rows: [
        row('allowPublish, one device under its rate', 'decisions/s', oneDevice),
        row(`allowPublish, ${DEVICES.toLocaleString('en-US')} devices in turn`, 'decisions/s', fleet, { atLeast: PUBLISH_TARGET }, '≤ 5 % of a 5 µs message'),
        row('allowPublish, one device flooding (every call refused and aggregated)', 'decisions/s', flood, { atLeast: PUBLISH_TARGET }),
        row(`allowHandshake, ${DEVICES.toLocaleString('en-US')} IPv4 sources in turn`, 'decisions/s', handshakes),
      ],
      raw: { runs: RUNS, publishes: PUBLISHES, handshakes: HANDSHAKES, devices: DEVICES, results },
      summary,
    };
  },
};
