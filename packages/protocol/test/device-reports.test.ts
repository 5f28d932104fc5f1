import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetwardError, MAX_METRICS_BYTES, parseDeviceMetrics, parseInventory, type DeviceMetricsReport, type InventoryReport } from '../src/index.js';

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** The field a refusal names, or 'accepted'. Anything but a FleetwardError FW_ERR_VALIDATION is a bug. */
function outcome(parse: () => unknown): string {
  try {
    parse();
    return 'accepted';
  } catch (error) {
    if (error instanceof FleetwardError && error.code === 'FW_ERR_VALIDATION') return typeof error.details.field === 'string' ? error.details.field : '';
    throw error;
  }
}

/** A report as the agent writes it on a gateway-class device: sshd, a local broker, mDNS, two peers. */
const metrics: DeviceMetricsReport = {
  v: 1,
  at: '2026-03-01T12:00:00.000Z',
  network: {
    listening: [
      { protocol: 'tcp', address: '0.0.0.0', port: 22 },
      { protocol: 'tcp', address: '::', port: 22 },
      { protocol: 'tcp', address: '127.0.0.1', port: 1883 },
      { protocol: 'udp', address: '0.0.0.0', port: 5353 },
    ],
    listeningTotal: 4,
    established: 3,
    destinations: ['192.0.2.10', '2001:db8::1'],
    bytesIn: 135_373_335,
    bytesOut: 729_397,
    packetsIn: 7425,
    packetsOut: 5955,
  },
  processes: 87,
  memory: { totalBytes: 1_073_741_824, usedBytes: 402_653_184 },
  cpuPercent: 12.5,
  disk: { totalBytes: 8_000_000_000, usedBytes: 3_000_000_000, freeBytes: 4_600_000_000 },
  uptimeSeconds: 86_400,
  agentRestarts: 2,
  authFailures: 0,
  batteryPercent: 87,
  custom: { 'sensor.temperature_c': 41.5 },
};

const inventory: InventoryReport = {
  v: 1,
  at: '2026-03-01T12:00:00.000Z',
  agentVersion: '0.1.0',
  firmwareVersion: '2026.02.1+build.7',
  imageHash: DIGEST,
  os: { type: 'Linux', release: '6.1.0-18-arm64', arch: 'arm64', name: 'Debian GNU/Linux 12 (bookworm)' },
  sbomRef: 'https://updates.example.com/sbom/2026.02.1.cdx.json',
};

/** A copy of `report` with the value at a dotted path (array indexes as numbers) replaced, or deleted for undefined. */
function withField(report: object, path: string, value: unknown): unknown {
  const copy = structuredClone(report) as Record<string, unknown>;
  const keys = path.split('.');
  let target = copy;
  for (const key of keys.slice(0, -1)) {
    const next = target[key];
    if (typeof next !== 'object' || next === null) return copy;
    target = next as Record<string, unknown>;
  }
  const last = keys.at(-1) as string;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return copy;
}

describe('device metrics report', () => {
  it('round-trips the report the agent writes, field for field', () => {
    expect(parseDeviceMetrics(encode(metrics))).toStrictEqual(metrics);
    expect(parseDeviceMetrics(encode({ ...metrics, batteryPercent: null, custom: {} }))).toMatchObject({ batteryPercent: null, custom: {} });
  });

  const refusals: [string, unknown, string][] = [
    ['v', 2, 'v'],
    ['v', undefined, 'v'],
    ['at', 'yesterday', 'at'],
    ['at', '2026-02-30T00:00:00Z', 'at'],
    ['at', '2026-03-01 12:00:00', 'at'],
    ['network', [], 'network'],
    ['network.listening', Array.from({ length: 257 }, (_, i) => ({ protocol: 'tcp', address: '0.0.0.0', port: i + 1 })), 'network.listening'],
    ['network.listening.0', 'tcp/22', 'network.listening[0]'],
    ['network.listening.0.port', 0, 'network.listening[0].port'],
    ['network.listening.0.port', 65_536, 'network.listening[0].port'],
    ['network.listening.0.port', 22.5, 'network.listening[0].port'],
    ['network.listening.0.protocol', 'sctp', 'network.listening[0].protocol'],
    ['network.listening.1.address', '999.0.0.1', 'network.listening[1].address'],
    ['network.listening.1.address', 'fe80::1%eth0', 'network.listening[1].address'],
    ['network.listening.1.address', 'localhost', 'network.listening[1].address'],
    ['network.listening.2.pid', 1234, 'network.listening[2].pid'],
    ['network.listeningTotal', 3, 'network.listeningTotal'],
    ['network.destinations', Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`), 'network.destinations'],
    ['network.destinations', ['192.0.2.10', 'evil.example.com'], 'network.destinations'],
    ['network.established', 1, 'network.established'],
    ['network.bytesIn', -1, 'network.bytesIn'],
    ['network.bytesOut', 2 ** 53, 'network.bytesOut'],
    ['network.packetsIn', '7425', 'network.packetsIn'],
    ['network.packetsOut', undefined, 'network.packetsOut'],
    ['processes', 1.5, 'processes'],
    ['memory.usedBytes', 2_000_000_000, 'memory.usedBytes'],
    ['memory.freeBytes', 1, 'memory.freeBytes'],
    ['cpuPercent', 100.1, 'cpuPercent'],
    ['cpuPercent', null, 'cpuPercent'],
    ['disk.freeBytes', 9_000_000_000, 'disk.freeBytes'],
    ['disk', null, 'disk'],
    ['uptimeSeconds', -5, 'uptimeSeconds'],
    ['agentRestarts', true, 'agentRestarts'],
    ['authFailures', undefined, 'authFailures'],
    ['batteryPercent', -1, 'batteryPercent'],
    ['batteryPercent', undefined, 'batteryPercent'],
    ['custom', { 'Bad Name': 1 }, 'custom'],
    ['custom', { temperature: 'hot' }, 'custom'],
    ['custom', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`m${i}`, i])), 'custom'],
    ['admin', true, 'admin'],
  ];
  it.each(refusals)('refuses %s = %j, naming %s', (path, value, field) => {
    expect(outcome(() => parseDeviceMetrics(encode(withField(metrics, path, value))))).toBe(field);
  });

  it('refuses payloads that are not one JSON object of bounded size', () => {
    expect(outcome(() => parseDeviceMetrics(encode([metrics])))).toBe('');
    expect(outcome(() => parseDeviceMetrics(new Uint8Array([0x7b, 0xff, 0x7d])))).toBe('');
    expect(outcome(() => parseDeviceMetrics(encode({ ...metrics, custom: { padding: 1 }, pad: 'x'.repeat(MAX_METRICS_BYTES) })))).toBe('');
  });

  it('a report at every bound (256 IPv6 sockets, 256 IPv6 destinations, 32 custom metrics) fits the size limit', () => {
    const longest = 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255';
    const full = {
      ...metrics,
      network: {
        ...metrics.network,
        listening: Array.from({ length: 256 }, (_, i) => ({ protocol: 'tcp', address: longest, port: 65_535 - i })),
        listeningTotal: Number.MAX_SAFE_INTEGER,
        destinations: Array.from({ length: 256 }, () => longest),
        established: Number.MAX_SAFE_INTEGER,
      },
      custom: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`m${i}`.padEnd(64, 'x'), -Number.MAX_VALUE])),
    };
    expect(parseDeviceMetrics(encode(full))).toEqual(full);
  });
});

describe('inventory report', () => {
  it('round-trips the report the agent writes, and one without image or SBOM', () => {
    expect(parseInventory(encode(inventory))).toStrictEqual(inventory);
    const bare = { ...inventory, imageHash: null, sbomRef: null, os: { ...inventory.os, name: null } };
    expect(parseInventory(encode(bare))).toStrictEqual(bare);
    expect(parseInventory(encode({ ...inventory, sbomRef: DIGEST })).sbomRef).toBe(DIGEST);
    expect(parseInventory(encode({ ...inventory, sbomRef: 'urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79' })).sbomRef).toMatch(/^urn:uuid:/);
  });

  const refusals: [string, unknown, string][] = [
    ['v', '1', 'v'],
    ['at', 1_772_366_400_000, 'at'],
    ['agentVersion', '0.1.0 beta', 'agentVersion'],
    ['agentVersion', undefined, 'agentVersion'],
    ['firmwareVersion', '', 'firmwareVersion'],
    ['firmwareVersion', 'v'.repeat(65), 'firmwareVersion'],
    ['imageHash', `sha256:${'AB'.repeat(32)}`, 'imageHash'],
    ['imageHash', `sha1:${'ab'.repeat(20)}`, 'imageHash'],
    ['imageHash', `md5:${'ab'.repeat(16)}`, 'imageHash'],
    ['imageHash', undefined, 'imageHash'],
    ['os.type', undefined, 'os.type'],
    ['os.name', 'Debian\nX-Injected: yes', 'os.name'],
    ['os.kernelCmdline', 'root=/dev/sda1', 'os.kernelCmdline'],
    ['os', 'Linux', 'os'],
    ['sbomRef', 'sha256:abc', 'sbomRef'],
    ['sbomRef', 'javascript:alert(1)', 'sbomRef'],
    ['sbomRef', 'https://', 'sbomRef'],
    ['sbomRef', 'sbom.json', 'sbomRef'],
    ['signature', 'trust me', 'signature'],
  ];
  it.each(refusals)('refuses %s = %j, naming %s', (path, value, field) => {
    expect(outcome(() => parseInventory(encode(withField(inventory, path, value))))).toBe(field);
  });
});

describe('any payload', () => {
  const address = fc.oneof(fc.ipV4(), fc.ipV6());
  const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
  const timestamp = fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }).map((d) => d.toISOString());
  const digest = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `sha256:${Buffer.from(b).toString('hex')}`);
  const version = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$/);
  const osText = fc.string({ minLength: 1, maxLength: 256 }).filter((text) => !/\p{Cc}/u.test(text));
  const validInventory = fc.record({
    v: fc.constant(1 as const),
    at: timestamp,
    agentVersion: version,
    firmwareVersion: version,
    imageHash: fc.option(digest),
    os: fc.record({ type: osText, release: osText, arch: osText, name: fc.option(osText) }),
    sbomRef: fc.option(fc.oneof(digest, fc.webUrl({ validSchemes: ['https'] }), fc.uuid().map((id) => `urn:uuid:${id}`))),
  });
  const validMetrics = fc
    .record({
      at: timestamp,
      listening: fc.array(fc.record({ protocol: fc.constantFrom('tcp' as const, 'udp' as const), address, port: fc.integer({ min: 1, max: 65_535 }) }), { maxLength: 256 }),
      destinations: fc.array(address, { maxLength: 256 }),
      extra: count,
      memory: fc.tuple(count, count).map(([a, b]) => ({ totalBytes: Math.max(a, b), usedBytes: Math.min(a, b) })),
      cpuPercent: fc.double({ min: 0, max: 100, noNaN: true }).map((x) => x + 0),
      batteryPercent: fc.option(fc.double({ min: 0, max: 100, noNaN: true }).map((x) => x + 0)),
      custom: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,63}$/), fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => x + 0), { maxKeys: 32 }),
      counters: fc.tuple(count, count, count, count, count, count, count),
    })
    .map(({ at, listening, destinations, extra, memory, cpuPercent, batteryPercent, custom, counters: [bytesIn, bytesOut, packetsIn, packetsOut, processes, uptimeSeconds, restarts] }): DeviceMetricsReport => ({
      v: 1,
      at,
      network: { listening, listeningTotal: Math.min(Number.MAX_SAFE_INTEGER, listening.length + extra), established: Math.min(Number.MAX_SAFE_INTEGER, destinations.length + extra), destinations, bytesIn, bytesOut, packetsIn, packetsOut },
      processes,
      memory,
      cpuPercent,
      disk: { totalBytes: memory.totalBytes, usedBytes: memory.usedBytes, freeBytes: memory.totalBytes - memory.usedBytes },
      uptimeSeconds,
      agentRestarts: restarts,
      authFailures: restarts,
      batteryPercent,
      custom,
    }));

  it('a valid report round-trips exactly', () => {
    fc.assert(fc.property(validMetrics, (report) => void expect(parseDeviceMetrics(encode(report))).toEqual(report)), { numRuns: 200 });
    fc.assert(fc.property(validInventory, (report) => void expect(parseInventory(encode(report))).toEqual(report)), { numRuns: 200 });
  });

  it('either parses or is refused with FW_ERR_VALIDATION (never another error, never a crash)', () => {
    const mutated = fc.tuple(validMetrics, fc.constantFrom('network.listening.0.port', 'network.destinations', 'memory.usedBytes', 'at', 'custom', 'network', 'v'), fc.jsonValue({ maxDepth: 2 })).map(([report, path, value]) => encode(withField(report, path, value)));
    const payloads = fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.jsonValue({ maxDepth: 4 }).map(encode), mutated, fc.object({ maxDepth: 3 }).map((o) => encode({ ...inventory, os: o })), validInventory.map((r) => encode({ ...r, imageHash: r.sbomRef })));
    fc.assert(
      fc.property(payloads, (payload) => {
        outcome(() => parseDeviceMetrics(payload));
        outcome(() => parseInventory(payload));
      }),
      { numRuns: 500 },
    );
  });
});
