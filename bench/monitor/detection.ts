import { performance } from 'node:perf_hooks';
import { DetectionStateStore } from '../../packages/server/src/monitor/detection-state-store.js';
import type { DeviceDetectionState } from '../../packages/server/src/monitor/detection/detection-state.js';
import { evaluateWindow, type DeviceWindowInput } from '../../packages/server/src/monitor/detection/evaluate-window.js';
import { parseSecurityProfile } from '../../packages/server/src/monitor/detection/security-profile.js';
import { MetricsStore } from '../../packages/server/src/monitor/metrics/metrics-store.js';
import type { WindowMetrics } from '../../packages/server/src/monitor/metrics/window-metrics.js';
import { monitor } from '../../packages/server/src/store/migrations/0014-monitor.js';
import { openBench } from '../lib/bench-home.js';
import { progress, row, type Row } from '../lib/report.js';

export const DETECTION_DEVICES = 100_000;
const RUNS = 5;
const WARM_WINDOWS = 4;
const STORAGE_RUNS = 3;
const TARGET_MS = 2_000;
const START = Date.parse('2026-12-01T00:00:00.000Z');

/** The profile every device is under: static thresholds, a fleet p99, port and address sets, a baseline. */
const PROFILE = parseSecurityProfile({
  name: 'fleet-default',
  behaviors: [
    { name: 'messages-in-high', metric: 'cloud.messagesIn', operator: 'gt', value: 600, datapointsToAlarm: 2, severity: 'high', actions: ['quarantine'] },
    { name: 'messages-in-p99', metric: 'cloud.messagesIn', operator: 'gt', statistic: 'p99', datapointsToAlarm: 3 },
    { name: 'bytes-in-p90', metric: 'cloud.bytesIn', operator: 'gt', statistic: 'p90', datapointsToAlarm: 5 },
    { name: 'authz-failures', metric: 'cloud.authzFailures', operator: 'gte', value: 5 },
    { name: 'ports-allowed', metric: 'device.listeningPorts', operator: 'not-in', ports: [22, 443, '8000-8100'] },
    { name: 'destinations-blocked', metric: 'device.destinations', operator: 'in', cidrs: ['203.0.113.0/24', '2001:db8:bad::/48'] },
    { name: 'cpu-high', metric: 'device.cpuPercent', operator: 'gt', value: 95, durationSeconds: 300 },
    { name: 'messages-baseline', metric: 'cloud.messagesIn', baseline: { zScore: 5, warmupWindows: 3, alpha: 0.1, minDeviation: 5 } },
  ],
});

/** One window of the fleet: 99 % normal devices, 1 % hostile (flood, new port, new address, bad destination). */
function fleetWindow(index: number): DeviceWindowInput[] {
  const start = new Date(START + index * 60_000).toISOString();
  const end = new Date(START + (index + 1) * 60_000).toISOString();
  const devices = new Array<DeviceWindowInput>(DETECTION_DEVICES);
  for (let i = 0; i < DETECTION_DEVICES; i += 1) {
    const hostile = index >= WARM_WINDOWS && i % 100 === 7;
    const messagesIn = hostile ? 5_000 : 50 + ((i * 7 + index) % 20);
    const window: WindowMetrics = {
      thing: `device-${i}`,
      windowStart: start,
      windowEnd: end,
      cloud: {
        connectAttempts: index === 0 ? 1 : 0, authnFailures: 0, authzFailures: hostile ? 9 : 0, disconnects: 0, disconnectedSeconds: 0,
        messagesIn, messagesOut: 5, bytesIn: messagesIn * 120, bytesOut: 600, messageSizeMax: 180, messageSizeMean: 120,
        sourceAddressCount: index === 0 || hostile ? 1 : 0,
        sourceAddresses: index === 0 ? [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`] : hostile ? [`198.51.100.${i & 255}`] : [],
        certificateAddressesMax: 1, certificateAddresses: [],
      },
      device: {
        listening: hostile ? ['tcp/22', 'tcp/443', 'tcp/4444'] : ['tcp/22', 'tcp/443'],
        listeningPorts: hostile ? [22, 443, 4444] : [22, 443],
        listeningTotal: hostile ? 3 : 2,
        established: 2,
        destinations: hostile ? ['203.0.113.9', '192.0.2.1'] : ['192.0.2.1', '192.0.2.2'],
        bytesIn: 10_000, bytesOut: 10_000, packetsIn: 100, packetsOut: 100, processes: 50, memoryUsedBytes: 2e8, cpuPercent: 10 + (i % 30),
        diskUsedBytes: 1e9, uptimeSeconds: 3600 + index * 60, agentRestarts: 0, authFailures: 0, batteryPercent: null,
      },
      custom: {},
    };
    devices[i] = { window, profiles: ['fleet-default'] };
  }
  return devices;
}

function evaluate(index: number, devices: readonly DeviceWindowInput[], state: ReadonlyMap<string, DeviceDetectionState>) {
  return evaluateWindow({ windowEnd: new Date(START + (index + 1) * 60_000).toISOString(), windowSeconds: 60, devices, profiles: new Map([['fleet-default', PROFILE]]), state });
}

/** The detection part of `npm run bench -- monitoring`: the engine over one window of 100,000 devices, then with storage. */
export async function benchDetection(): Promise<{ readonly rows: Row[]; readonly raw: Record<string, unknown> }> {
  let state: ReadonlyMap<string, DeviceDetectionState> = new Map();
  for (let w = 0; w < WARM_WINDOWS; w += 1) state = evaluate(w, fleetWindow(w), state).state;
  const engineMs: number[] = [];
  const detections: number[] = [];
  for (let run = 0; run < RUNS; run += 1) {
    const index = WARM_WINDOWS + run;
    const devices = fleetWindow(index);
    const started = performance.now();
    const out = evaluate(index, devices, state);
    engineMs.push(performance.now() - started);
    detections.push(out.detections.length);
    state = out.state;
    progress(`detection engine run ${run + 1}/${RUNS}: ${Math.round(engineMs.at(-1) ?? 0)} ms, ${out.detections.length} detections`);
  }
  const storageMs: number[] = [];
  for (let run = 0; run < STORAGE_RUNS; run += 1) storageMs.push(await withStorage(WARM_WINDOWS + RUNS + run, state));
  const rows = [
    row(`detection engine: one window of ${DETECTION_DEVICES.toLocaleString('en-US')} devices, ${PROFILE.behaviors.length} behaviours + built-in rules, 1 % hostile`, 'ms', engineMs, { below: TARGET_MS }),
    row(`same window with SQLite storage: write ${DETECTION_DEVICES.toLocaleString('en-US')} metric rows, evaluate, save every device's detection state`, 'ms', storageMs),
  ];
  return { rows, raw: { devices: DETECTION_DEVICES, engineMs, detections, storageMs } };
}

async function withStorage(index: number, state: ReadonlyMap<string, DeviceDetectionState>): Promise<number> {
  const bench = await openBench();
  try {
    const { store, audit, clock } = bench.context;
    // Migration 0014 until the migration list registers it.
    const present = await store.db.selectFrom('detection_state').select('thing').limit(1).execute().then(() => true, () => false);
    if (!present) await monitor(store.dialect).up(store.db);
    const metrics = new MetricsStore({ store, audit, clock });
    const states = new DetectionStateStore(store);
    const devices = fleetWindow(index);
    const started = performance.now();
    await metrics.write(devices.map((d) => d.window));
    const out = evaluate(index, devices, state);
    await states.save(out.state, clock.now());
    const ms = performance.now() - started;
    progress(`detection with SQLite storage run: ${Math.round(ms)} ms`);
    return ms;
  } finally {
    await bench.close();
  }
}
