import type { DeviceMetricsReport } from '@fleetward/protocol';
import { describe, expect, it } from 'vitest';
import type { DeviceDetectionState } from '../../../src/monitor/detection/detection-state.js';
import { evaluateWindow } from '../../../src/monitor/detection/evaluate-window.js';
import { parseSecurityProfile } from '../../../src/monitor/detection/security-profile.js';
import { CloudMetrics } from '../../../src/monitor/metrics/cloud-metrics.js';
import { DeviceMetrics } from '../../../src/monitor/metrics/device-metrics.js';
import { EMPTY_CLOUD, type MetricKind, type WindowMetrics } from '../../../src/monitor/metrics/window-metrics.js';
import type { Detection } from '../../../src/monitor/types.js';

/**
 * The attacker's side of detection: each hostile pattern, fed through the collectors exactly as
 * the gateway feeds them (connects, publishes, reports), produces its detection within the
 * windows its behaviour asks for; a normal device living alongside produces none.
 */
const WINDOW = 60_000;
const T0 = Date.parse('2026-12-01T00:00:00.000Z');

/** What the `plc` thing type declares. */
const PLC_KINDS = new Map<string, MetricKind>([['modbus.peers', 'address-list'], ['services', 'string-list'], ['service.ports', 'number-list']]);

const PROFILE = parseSecurityProfile({
  name: 'default',
  behaviors: [
    { name: 'messages-in-high', metric: 'cloud.messagesIn', operator: 'gt', value: 600, datapointsToAlarm: 2, severity: 'high', actions: ['quarantine'] },
    { name: 'messages-in-fleet', metric: 'cloud.messagesIn', operator: 'gt', statistic: 'p99', datapointsToAlarm: 3 },
    { name: 'authz-failures', metric: 'cloud.authzFailures', operator: 'gte', value: 5 },
    { name: 'ports-allowed', metric: 'device.listeningPorts', operator: 'not-in', ports: [22, '8000-8100'], severity: 'high' },
    { name: 'destinations', metric: 'device.destinations', operator: 'in', cidrs: ['203.0.113.0/24'] },
    { name: 'bytes-out-baseline', metric: 'cloud.bytesIn', baseline: { zScore: 6, warmupWindows: 5, alpha: 0.2, minDeviation: 100 } },
    { name: 'modbus-peers', metric: 'custom.modbus.peers', operator: 'not-in', cidrs: ['10.20.0.0/16', '2001:db8:20::/48'], severity: 'high' },
    { name: 'services', metric: 'custom.services', operator: 'not-in', strings: ['mosquitto', 'plc-runtime'] },
    { name: 'service-ports', metric: 'custom.service.ports', operator: 'not-in', ports: [502, '1883-1884'] },
  ],
}, PLC_KINDS);

function report(overrides: { ports?: number[]; destinations?: string[]; bytesOut?: number; custom?: DeviceMetricsReport['custom'] } = {}): DeviceMetricsReport {
  const ports = overrides.ports ?? [22];
  return {
    v: 1,
    at: new Date(T0).toISOString(),
    network: { listening: ports.map((port) => ({ protocol: 'tcp' as const, address: '0.0.0.0', port })), listeningTotal: ports.length, established: 1, destinations: overrides.destinations ?? ['198.51.100.7'], bytesIn: 1000, bytesOut: overrides.bytesOut ?? 1000, packetsIn: 10, packetsOut: 10 },
    processes: 40,
    memory: { totalBytes: 1e9, usedBytes: 4e8 },
    cpuPercent: 5,
    disk: { totalBytes: 1e10, usedBytes: 1e9, freeBytes: 9e9 },
    uptimeSeconds: 1000,
    agentRestarts: 0,
    authFailures: 0,
    batteryPercent: null,
    custom: overrides.custom ?? {},
  };
}

/** A small fleet of normal devices plus the ones under test, window after window. */
class Fleet {
  readonly cloud = new CloudMetrics(new Date(T0));
  readonly device = new DeviceMetrics((type) => (type === 'plc' ? PLC_KINDS : undefined));
  state = new Map<string, DeviceDetectionState>();
  window = 0;
  readonly normals = Array.from({ length: 200 }, (_, i) => `normal-${i}`);

  constructor() {
    for (const [i, thing] of this.normals.entries()) this.cloud.connected(thing, `serial-${thing}`, `10.1.${i >> 8}.${i & 255}`, new Date(T0));
  }

  /** Normal traffic: about 60 messages of 100 bytes a minute, one report a window, same ports. */
  normalTraffic(): void {
    for (const [i, thing] of this.normals.entries()) {
      for (let m = 0; m < 55 + (i % 10); m += 1) this.cloud.message(thing, 'in', 90 + (m % 20));
      this.device.record(thing, null, report());
    }
  }

  close(): Detection[] {
    this.window += 1;
    const end = new Date(T0 + this.window * WINDOW);
    const cloud = this.cloud.drain(end);
    const device = this.device.drain();
    const things = new Set([...cloud.devices.keys(), ...device.devices.keys()]);
    const windows: WindowMetrics[] = [...things].map((thing) => ({
      thing,
      windowStart: new Date(end.getTime() - WINDOW).toISOString(),
      windowEnd: end.toISOString(),
      cloud: cloud.devices.get(thing) ?? EMPTY_CLOUD,
      device: device.devices.get(thing)?.device ?? null,
      custom: device.devices.get(thing)?.custom ?? {},
    }));
    const out = evaluateWindow({ windowEnd: end.toISOString(), windowSeconds: 60, devices: windows.map((w) => ({ window: w, profiles: ['default'] })), profiles: new Map([['default', PROFILE]]), state: this.state });
    this.state = new Map([...this.state, ...out.state]);
    return [...out.detections];
  }
}

const of = (detections: readonly Detection[], thing: string) => detections.filter((d) => d.thing === thing);

describe('detection from the attacker\'s side', () => {
  it('normal devices produce no detection over many windows', () => {
    const fleet = new Fleet();
    const all: Detection[] = [];
    for (let w = 0; w < 20; w += 1) {
      fleet.normalTraffic();
      all.push(...fleet.close());
    }
    expect(all).toEqual([]);
  });

  it('a message flood is detected by the static threshold after two windows, by the fleet p99 and by the baseline', () => {
    const fleet = new Fleet();
    fleet.normals.push('flooder');
    fleet.cloud.connected('flooder', 'serial-flooder', '10.9.9.9', new Date(T0));
    for (let w = 0; w < 8; w += 1) {
      fleet.normalTraffic();
      fleet.close();
    }
    fleet.normals.pop();
    const seen: Detection[][] = [];
    for (let w = 0; w < 3; w += 1) {
      fleet.normalTraffic();
      for (let m = 0; m < 5_000; m += 1) fleet.cloud.message('flooder', 'in', 100);
      seen.push(of(fleet.close(), 'flooder'));
    }
    // Baseline: the first flooded window is many deviations above the device's own mean.
    expect(seen[0]?.map((d) => d.behavior)).toContain('bytes-out-baseline');
    expect(seen[0]?.map((d) => d.behavior)).not.toContain('messages-in-high');
    const high = seen[1]?.find((d) => d.behavior === 'messages-in-high');
    expect(high).toMatchObject({ severity: 'high', actions: ['quarantine'], value: 5000, profile: 'default', dedupeKey: 'flooder/default/messages-in-high' });
    expect(seen[2]?.map((d) => d.behavior)).toContain('messages-in-fleet');
    for (const thing of fleet.normals) expect(of(seen.flat(), thing)).toEqual([]);
  });

  it('a newly opened listening port is detected (built-in rule and a port-set behaviour); the first report only teaches', () => {
    const fleet = new Fleet();
    fleet.normalTraffic();
    fleet.device.record('victim', null, report({ ports: [22, 8080] }));
    expect(of(fleet.close(), 'victim')).toEqual([]);
    fleet.normalTraffic();
    fleet.device.record('victim', null, report({ ports: [22, 8080, 4444] }));
    const detections = of(fleet.close(), 'victim');
    expect(detections.find((d) => d.behavior === 'new-listening-port')).toMatchObject({ value: 'tcp/4444', profile: null, dedupeKey: 'victim/new-listening-port/tcp/4444' });
    expect(detections.find((d) => d.behavior === 'ports-allowed')).toMatchObject({ value: [4444], severity: 'high' });
  });

  it('a device connecting from a new address is detected; its first address is learned silently', () => {
    const fleet = new Fleet();
    fleet.cloud.connectAttempt('roamer', '192.0.2.10', 'accepted');
    fleet.cloud.connected('roamer', 's-roamer', '192.0.2.10', new Date(T0 + 1000));
    fleet.normalTraffic();
    expect(of(fleet.close(), 'roamer')).toEqual([]);
    fleet.cloud.disconnected('roamer', 's-roamer', '192.0.2.10', new Date(T0 + WINDOW + 1000));
    fleet.cloud.connectAttempt('roamer', '203.0.113.66', 'accepted');
    fleet.cloud.connected('roamer', 's-roamer', '203.0.113.66', new Date(T0 + WINDOW + 2000));
    fleet.normalTraffic();
    const detections = of(fleet.close(), 'roamer');
    expect(detections.find((d) => d.behavior === 'new-source-address')).toMatchObject({ value: '203.0.113.66', severity: 'low' });
    expect(detections.find((d) => d.behavior === 'certificate-multiple-addresses')).toBeUndefined();
  });

  it('one certificate live from two addresses at once is detected, and stays detected while both sessions live', () => {
    const fleet = new Fleet();
    fleet.cloud.connected('cloned', 's-cloned', '192.0.2.10', new Date(T0 + 1000));
    fleet.cloud.connected('cloned', 's-cloned', '198.51.100.20', new Date(T0 + 2000));
    fleet.normalTraffic();
    const first = of(fleet.close(), 'cloned').find((d) => d.behavior === 'certificate-multiple-addresses');
    expect(first).toMatchObject({ severity: 'high', value: ['192.0.2.10', '198.51.100.20'] });
    fleet.normalTraffic();
    expect(of(fleet.close(), 'cloned').map((d) => d.behavior)).toContain('certificate-multiple-addresses');
    fleet.cloud.disconnected('cloned', 's-cloned', '198.51.100.20', new Date(T0 + 2 * WINDOW + 1000));
    fleet.close();
    fleet.normalTraffic();
    expect(of(fleet.close(), 'cloned').map((d) => d.behavior)).not.toContain('certificate-multiple-addresses');
  });

  it('authorization failures and a destination in a blocked block are detected', () => {
    const fleet = new Fleet();
    fleet.normalTraffic();
    for (let i = 0; i < 7; i += 1) fleet.cloud.denied('prober');
    fleet.device.record('exfil', null, report({ destinations: ['203.0.113.9', '198.51.100.7'] }));
    const detections = fleet.close();
    expect(of(detections, 'prober').map((d) => d.behavior)).toEqual(['authz-failures']);
    expect(of(detections, 'exfil').find((d) => d.behavior === 'destinations')).toMatchObject({ value: ['203.0.113.9'] });
  });

  it('custom lists: a peer outside the allowed blocks, a service outside the allowed set and a port outside the allowed ranges are each detected, naming only the intruders', () => {
    const fleet = new Fleet();
    const allowed = { 'modbus.peers': { 'address-list': ['10.20.0.5', '2001:db8:20::7'] }, services: { 'string-list': ['mosquitto', 'plc-runtime'] }, 'service.ports': { 'number-list': [502, 1883, 1884] } };
    fleet.normalTraffic();
    fleet.device.record('plc-good', 'plc', report({ custom: allowed }));
    fleet.device.record('plc-bad', 'plc', report({ custom: { 'modbus.peers': { 'address-list': ['10.20.0.5', '203.0.113.50', '2001:db8:66::1'] }, services: { 'string-list': ['mosquitto', 'socat'] }, 'service.ports': { 'number-list': [502, 4444] } } }));
    // Its type declares nothing: the same lists are dropped, not judged.
    fleet.device.record('untyped', null, report({ custom: { 'modbus.peers': { 'address-list': ['203.0.113.50'] } } }));
    const detections = fleet.close();
    expect(of(detections, 'plc-good')).toEqual([]);
    expect(of(detections, 'untyped')).toEqual([]);
    const bad = of(detections, 'plc-bad');
    expect(bad.map((d) => [d.behavior, d.value])).toEqual([
      ['modbus-peers', ['203.0.113.50', '2001:db8:66::1']],
      ['services', ['socat']],
      ['service-ports', [4444]],
    ]);
    expect(bad[0]).toMatchObject({ severity: 'high', metric: 'custom.modbus.peers', dedupeKey: 'plc-bad/default/modbus-peers' });
  });

  it('a new source country is detected only with a GeoIP table', () => {
    const countryOf = (address: string) => (address.startsWith('192.0.2.') ? 'DE' : address.startsWith('198.51.100.') ? 'KP' : null);
    const win = (sources: string[], end: string): WindowMetrics => ({ thing: 't', windowStart: end, windowEnd: end, cloud: { ...EMPTY_CLOUD, sourceAddresses: sources, sourceAddressCount: sources.length }, device: null, custom: {} });
    const first = evaluateWindow({ windowEnd: 'w1', windowSeconds: 60, devices: [{ window: win(['192.0.2.1'], 'w1'), profiles: [] }], profiles: new Map(), state: new Map(), countryOf });
    const second = evaluateWindow({ windowEnd: 'w2', windowSeconds: 60, devices: [{ window: win(['192.0.2.2', '198.51.100.3'], 'w2'), profiles: [] }], profiles: new Map(), state: first.state, countryOf });
    expect(second.detections.map((d) => d.behavior).sort()).toEqual(['new-source-address', 'new-source-address', 'new-source-country']);
    expect(second.detections.find((d) => d.behavior === 'new-source-country')?.value).toEqual({ address: '198.51.100.3', country: 'KP' });
    const without = evaluateWindow({ windowEnd: 'w2', windowSeconds: 60, devices: [{ window: win(['198.51.100.3'], 'w2'), profiles: [] }], profiles: new Map(), state: first.state });
    expect(without.detections.map((d) => d.behavior)).toEqual(['new-source-address']);
  });
});

describe('cloud metrics collector', () => {
  it('counts a window: attempts, refusals, denials, messages, sizes, sources, disconnected time', () => {
    const cloud = new CloudMetrics(new Date(T0));
    cloud.connectAttempt('d', '192.0.2.1', 'authn-failure');
    cloud.connectAttempt('d', '192.0.2.2', 'authz-failure');
    cloud.connectAttempt('d', '192.0.2.2', 'accepted');
    cloud.connectAttempt(null, '192.0.2.3', 'authn-failure');
    cloud.connected('d', 's', '192.0.2.2', new Date(T0 + 1000));
    cloud.message('d', 'in', 100);
    cloud.message('d', 'in', 300);
    cloud.message('d', 'out', 50);
    cloud.denied('d');
    cloud.disconnected('d', 's', '192.0.2.2', new Date(T0 + 30_000));
    const { devices, unattributed } = cloud.drain(new Date(T0 + WINDOW));
    expect(devices.get('d')).toMatchObject({ connectAttempts: 3, authnFailures: 1, authzFailures: 2, messagesIn: 2, messagesOut: 1, bytesIn: 400, bytesOut: 50, messageSizeMax: 300, messageSizeMean: 200, sourceAddressCount: 2, disconnects: 1, disconnectedSeconds: 30 });
    expect(unattributed).toEqual({ connectAttempts: 1, authnFailures: 1 });
    // Still disconnected: the whole next window counts.
    expect(cloud.drain(new Date(T0 + 2 * WINDOW)).devices.get('d')).toMatchObject({ disconnectedSeconds: 60, messagesIn: 0 });
  });
});
