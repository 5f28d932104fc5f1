import type { DeviceMetricsReport } from '@fleetward/protocol';
import { describe, expect, it } from 'vitest';
import { DeviceHealth } from '../../../src/updates/device-health.js';

const T0 = Date.parse('2026-12-04T10:00:00Z');

function report(overrides: { authFailures?: number; agentRestarts?: number; uptimeSeconds?: number; ports?: number[] }): DeviceMetricsReport {
  return {
    v: 1,
    at: new Date(T0).toISOString(),
    network: { listening: (overrides.ports ?? [22]).map((port) => ({ protocol: 'tcp' as const, address: '0.0.0.0', port })), listeningTotal: 1, established: 1, destinations: [], bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 },
    processes: 10,
    memory: { totalBytes: 1, usedBytes: 1 },
    cpuPercent: 1,
    disk: { totalBytes: 1, usedBytes: 1, freeBytes: 0 },
    uptimeSeconds: overrides.uptimeSeconds ?? 1000,
    agentRestarts: overrides.agentRestarts ?? 0,
    authFailures: overrides.authFailures ?? 0,
    batteryPercent: null,
    custom: {},
  };
}

describe('device health samples for gated rollouts', () => {
  it('counts what changed since the deployment started: auth failures, new ports, reboots, gateway denials', async () => {
    const health = new DeviceHealth();
    health.record('d1', report({ authFailures: 5, ports: [22] }), new Date(T0 - 60_000));
    health.denied('d1', new Date(T0 - 30_000)); // before: not counted
    health.record('d1', report({ authFailures: 7, ports: [22, 8080], uptimeSeconds: 2000 }), new Date(T0 + 60_000));
    // A reboot: uptime goes back and the agent's counters restart from zero.
    health.record('d1', report({ authFailures: 1, ports: [22, 8080, 9000], uptimeSeconds: 5, agentRestarts: 1 }), new Date(T0 + 120_000));
    health.denied('d1', new Date(T0 + 90_000));
    health.denied('d1', new Date(T0 + 100_000));
    const samples = await health.samples(['d1'], new Date(T0));
    expect(samples.get('d1')).toEqual({ authFailures: 2 + 1 + 2, newListeningPorts: 2, reboots: 1 });
  });

  it('leaves out a device without a reading from before the start, or none after it', async () => {
    const health = new DeviceHealth();
    health.record('late', report({}), new Date(T0 + 1_000));
    health.record('quiet', report({}), new Date(T0 - 1_000));
    expect((await health.samples(['late', 'quiet', 'unknown'], new Date(T0))).size).toBe(0);
  });
});
