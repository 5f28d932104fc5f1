import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceMetricsReport } from '@fleetward/protocol';
import { describe, expect, it } from 'vitest';
import { withFirmwareDetections } from '../../../src/monitor/detection/firmware-rule.js';
import { loadGeoIp } from '../../../src/monitor/geoip.js';
import { validateCustom } from '../../../src/monitor/metrics/custom-metrics.js';
import { DeviceMetrics } from '../../../src/monitor/metrics/device-metrics.js';
import type { MetricKind } from '../../../src/monitor/metrics/window-metrics.js';
import type { Detection } from '../../../src/monitor/types.js';
import type { UpdateAlert } from '../../../src/updates/types.js';
import { clockFrom } from '../../../src/clock.js';

const report = (n: { bytesOut: number; restarts?: number; uptime?: number; custom?: Record<string, number> }): DeviceMetricsReport => ({
  v: 1,
  at: '2026-12-01T00:00:00.000Z',
  network: { listening: [{ protocol: 'tcp', address: '0.0.0.0', port: 22 }, { protocol: 'tcp', address: '::', port: 22 }], listeningTotal: 2, established: 0, destinations: [], bytesIn: 0, bytesOut: n.bytesOut, packetsIn: 0, packetsOut: 0 },
  processes: 1,
  memory: { totalBytes: 10, usedBytes: 5 },
  cpuPercent: 1,
  disk: { totalBytes: 10, usedBytes: 1, freeBytes: 9 },
  uptimeSeconds: n.uptime ?? 100,
  agentRestarts: n.restarts ?? 0,
  authFailures: 0,
  batteryPercent: 50,
  custom: n.custom ?? {},
});

describe('device metrics per window', () => {
  it('turns counters into deltas (a restart starts them over) and keeps only declared custom metrics', () => {
    const declared = new Map<string, MetricKind>([['queue.depth', 'number']]);
    const metrics = new DeviceMetrics((type) => (type === 'meter' ? declared : undefined));
    metrics.record('m', 'meter', report({ bytesOut: 1000, custom: { 'queue.depth': 4, stuffed: 1 } }));
    const first = metrics.drain();
    expect(first.devices.get('m')).toMatchObject({ device: { bytesOut: 0, listening: ['tcp/22'], listeningPorts: [22] }, custom: { 'queue.depth': 4 } });
    expect(first.rejectedCustom).toEqual({ undeclared: 1, 'wrong-kind': 0 });
    metrics.record('m', 'meter', report({ bytesOut: 1500 }));
    expect(metrics.drain().devices.get('m')?.device.bytesOut).toBe(500);
    metrics.record('m', 'meter', report({ bytesOut: 200, restarts: 1, uptime: 5 }));
    expect(metrics.drain().devices.get('m')?.device).toMatchObject({ bytesOut: 200, agentRestarts: 1 });
    expect(metrics.drain().devices.size).toBe(0);
  });

  it('keeps each custom kind where it is declared, untagged; drops another kind or an undeclared name', () => {
    const kinds = new Map<string, MetricKind>([['n', 'number'], ['nl', 'number-list'], ['sl', 'string-list'], ['al', 'address-list']]);
    const kept = validateCustom(kinds, { n: 1, nl: { 'number-list': [1, 2] }, sl: { 'string-list': ['a'] }, al: { 'address-list': ['192.0.2.1', '2001:db8::1'] } });
    expect(kept).toEqual({ values: { n: 1, nl: [1, 2], sl: ['a'], al: ['192.0.2.1', '2001:db8::1'] }, rejected: [] });
    // Addresses reported as plain strings are not an address list: a CIDR behaviour must not be fed text.
    const wrong = validateCustom(kinds, { n: { 'number-list': [1] }, nl: 2, sl: { 'address-list': ['192.0.2.1'] }, al: { 'string-list': ['192.0.2.1'] }, other: 1 });
    expect(wrong.values).toEqual({});
    expect(wrong.rejected).toEqual([
      { name: 'n', reason: 'wrong-kind' },
      { name: 'nl', reason: 'wrong-kind' },
      { name: 'sl', reason: 'wrong-kind' },
      { name: 'al', reason: 'wrong-kind' },
      { name: 'other', reason: 'undeclared' },
    ]);
    expect(validateCustom(undefined, { n: 1 }).rejected).toEqual([{ name: 'n', reason: 'undeclared' }]);
  });
});

describe('unknown firmware rule', () => {
  it('turns the software inventory\'s unauthorized-firmware alert into a detection, and passes the alert on', async () => {
    const raised: UpdateAlert[] = [];
    const detected: Detection[] = [];
    const raise = withFirmwareDetections((a) => Promise.resolve(void raised.push(a)), { detected: (d) => Promise.resolve(void detected.push(d)) }, clockFrom(() => new Date('2026-12-01T00:00:00.000Z')));
    await raise({ kind: 'unauthorized-firmware', thing: 'm', message: 'm runs an unsigned image', details: { imageHash: 'sha256:ab' } });
    await raise({ kind: 'deployment-aborted', deployment: 'd', message: 'aborted' });
    expect(raised).toHaveLength(2);
    expect(detected).toEqual([{ thing: 'm', behavior: 'unknown-firmware', profile: null, severity: 'high', metric: 'inventory.imageHash', value: 'sha256:ab', message: 'm runs an unsigned image', at: '2026-12-01T00:00:00.000Z', dedupeKey: 'm/unknown-firmware/sha256:ab', actions: [] }]);
  });
});

describe('GeoIP table', () => {
  it('maps an address to the country of its most specific block', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fw-geoip-'));
    const file = join(dir, 'geo.csv');
    await writeFile(file, '# cidr,country\n192.0.2.0/24,DE\n192.0.2.128/25,FR\n2001:db8::/32,NL\n');
    const countryOf = await loadGeoIp(file);
    expect([countryOf('192.0.2.1'), countryOf('192.0.2.200'), countryOf('2001:db8::5'), countryOf('198.51.100.1'), countryOf('nonsense')]).toEqual(['DE', 'FR', 'NL', null, null]);
    await writeFile(file, '192.0.2.0/24,Germany\n');
    await expect(loadGeoIp(file)).rejects.toThrow(/line 1/);
  });
});
