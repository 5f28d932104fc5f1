import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { customMetricKind, FleetwardError, MAX_CUSTOM_LIST_ITEMS, MAX_METRICS_BYTES, parseCustomMetrics, parseDeviceMetrics, parseInventory, type CustomMetricValue, type DeviceMetricsReport, type InventoryReport } from '../src/index.js';

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
  custom: {
    'sensor.temperature_c': 41.5,
    'modbus.peers': { 'address-list': ['192.0.2.20', '2001:db8::20'] },
    'services': { 'string-list': ['mosquitto', 'sshd'] },
    'service.ports': { 'number-list': [1883, 8883] },
    'vpn.peers': { 'address-list': [] },
  },
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

/**
 * A copy of `report` with the value at a path replaced, or deleted for undefined: a dotted path
 * (array indexes as numbers), or its keys one by one (custom metric names have dots of their own).
 */
function withField(report: object, path: string | readonly string[], value: unknown): unknown {
  const copy = structuredClone(report) as Record<string, unknown>;
  const keys = typeof path === 'string' ? path.split('.') : path;
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

  it('reads a report as agents wrote it before custom lists (numbers only, still v1) unchanged', () => {
    const before = { ...metrics, custom: { 'sensor.temperature_c': 41.5, 'queue.depth': 3 } };
    expect(parseDeviceMetrics(encode(before))).toStrictEqual(before);
  });

  const refusals: [string | readonly string[], unknown, string][] = [
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
    ['custom', { temperature: 'hot' }, 'custom.temperature'],
    ['custom', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`m${i}`, i])), 'custom'],
    ['custom', [1, 2], 'custom'],
    // A list must say what it is: a bare array, an unknown kind, two kinds at once.
    ['custom.services', ['mosquitto'], 'custom.services'],
    ['custom.services', { 'process-list': ['sshd'] }, 'custom.services'],
    ['custom.services', { 'string-list': ['sshd'], 'number-list': [1] }, 'custom.services'],
    ['custom.services', {}, 'custom.services'],
    ['custom.services', null, 'custom.services'],
    ['custom.services', true, 'custom.services'],
    [['custom', 'services', 'string-list'], 'sshd', 'custom.services.string-list'],
    [['custom', 'services', 'string-list'], [1883], 'custom.services.string-list'],
    [['custom', 'services', 'string-list'], [''], 'custom.services.string-list'],
    [['custom', 'services', 'string-list'], ['x'.repeat(129)], 'custom.services.string-list'],
    [['custom', 'services', 'string-list'], ['sshd\u001b[2J'], 'custom.services.string-list'],
    [['custom', 'services', 'string-list'], ['a\nX-Injected: yes'], 'custom.services.string-list'],
    [['custom', 'services', 'string-list'], Array.from({ length: 257 }, (_, i) => `s${i}`), 'custom.services.string-list'],
    [['custom', 'modbus.peers', 'address-list'], ['192.0.2.20', 'evil.example.com'], 'custom.modbus.peers.address-list'],
    [['custom', 'modbus.peers', 'address-list'], ['999.0.0.1'], 'custom.modbus.peers.address-list'],
    [['custom', 'modbus.peers', 'address-list'], ['fe80::1%eth0'], 'custom.modbus.peers.address-list'],
    [['custom', 'modbus.peers', 'address-list'], ['192.0.2.0/24'], 'custom.modbus.peers.address-list'],
    [['custom', 'modbus.peers', 'address-list'], [3_221_225_492], 'custom.modbus.peers.address-list'],
    [['custom', 'modbus.peers', 'address-list'], Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`), 'custom.modbus.peers.address-list'],
    [['custom', 'service.ports', 'number-list'], ['1883'], 'custom.service.ports.number-list'],
    [['custom', 'service.ports', 'number-list'], [1883, null], 'custom.service.ports.number-list'],
    [['custom', 'service.ports', 'number-list'], [[1883]], 'custom.service.ports.number-list'],
    [['custom', 'service.ports', 'number-list'], Array.from({ length: 257 }, (_, i) => i), 'custom.service.ports.number-list'],
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

  const longest = 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255';
  /** The network part at every bound: 256 IPv6 sockets and 256 IPv6 destinations of the longest text form. */
  const fullNetwork = {
    ...metrics.network,
    listening: Array.from({ length: 256 }, (_, i) => ({ protocol: 'tcp' as const, address: longest, port: 65_535 - i })),
    listeningTotal: Number.MAX_SAFE_INTEGER,
    destinations: Array.from({ length: 256 }, () => longest),
    established: Number.MAX_SAFE_INTEGER,
  };

  it('a report at every bound (256 IPv6 sockets, 256 IPv6 destinations, 32 custom metrics) fits the size limit', () => {
    const full = { ...metrics, network: fullNetwork, custom: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`m${i}`.padEnd(64, 'x'), -Number.MAX_VALUE])) };
    expect(parseDeviceMetrics(encode(full))).toEqual(full);
  });

  it('one full custom list fits beside every built-in bound; lists that together pass the size limit refuse the whole report', () => {
    const peers = { 'address-list': Array.from({ length: MAX_CUSTOM_LIST_ITEMS }, () => longest) };
    const one = { ...metrics, network: fullNetwork, custom: { peers } };
    expect(parseDeviceMetrics(encode(one))).toEqual(one);
    // About 35 KB of built-in lists and 12 KB a full address list: the third is too many.
    expect(outcome(() => parseDeviceMetrics(encode({ ...one, custom: { peers, more: peers, most: peers } })))).toBe('');
  });
});

describe('custom metrics', () => {
  it('tells a value\'s kind by its tag', () => {
    expect(Object.fromEntries(Object.entries(metrics.custom).map(([name, value]) => [name, customMetricKind(value)]))).toEqual({
      'sensor.temperature_c': 'number',
      'modbus.peers': 'address-list',
      services: 'string-list',
      'service.ports': 'number-list',
      'vpn.peers': 'address-list',
    });
  });

  it('checks an application\'s values as the report does, naming the value refused', () => {
    expect(parseCustomMetrics(metrics.custom)).toEqual(metrics.custom);
    expect(outcome(() => parseCustomMetrics({ peers: { 'address-list': ['192.0.2.1', 'gateway.local'] } }))).toBe('custom.peers.address-list');
    expect(outcome(() => parseCustomMetrics({ 'Bad Name': 1 }))).toBe('custom');
    expect(outcome(() => parseCustomMetrics('42'))).toBe('custom');
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
  const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => x + 0);
  const printable = fc.string({ minLength: 1, maxLength: 64 }).filter((text) => !/\p{Cc}/u.test(text));
  const customName = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,63}$/);
  /** Lists short enough that 32 of them beside full built-in lists stay under the size limit. */
  const validItems = {
    'number-list': fc.array(finite, { maxLength: 8 }),
    'string-list': fc.array(printable, { maxLength: 8 }),
    'address-list': fc.array(address, { maxLength: 8 }),
  };
  const customValue: fc.Arbitrary<CustomMetricValue> = fc.oneof(
    finite,
    validItems['number-list'].map((items) => ({ 'number-list': items })),
    validItems['string-list'].map((items) => ({ 'string-list': items })),
    validItems['address-list'].map((items) => ({ 'address-list': items })),
  );
  /** An item that has no place in a list of that kind. */
  const badItems = {
    'number-list': fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.array(finite, { maxLength: 2 }), fc.constantFrom(Number.NaN, Infinity)),
    'string-list': fc.oneof(finite, fc.constant(''), fc.string({ minLength: 129, maxLength: 200 }), fc.tuple(fc.string(), fc.integer({ min: 0, max: 0x1f })).map(([text, control]) => `${text}${String.fromCharCode(control)}`), fc.constant(null)),
    'address-list': fc.oneof(fc.string().filter((text) => isIP(text) === 0), fc.domain(), fc.ipV4().map((a) => `${a}/24`), fc.ipV6().map((a) => `${a}%eth0`), fc.nat()),
  };
  const validMetrics = fc
    .record({
      at: timestamp,
      listening: fc.array(fc.record({ protocol: fc.constantFrom('tcp' as const, 'udp' as const), address, port: fc.integer({ min: 1, max: 65_535 }) }), { maxLength: 256 }),
      destinations: fc.array(address, { maxLength: 256 }),
      extra: count,
      memory: fc.tuple(count, count).map(([a, b]) => ({ totalBytes: Math.max(a, b), usedBytes: Math.min(a, b) })),
      cpuPercent: fc.double({ min: 0, max: 100, noNaN: true }).map((x) => x + 0),
      batteryPercent: fc.option(fc.double({ min: 0, max: 100, noNaN: true }).map((x) => x + 0)),
      custom: fc.dictionary(customName, customValue, { maxKeys: 32 }),
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

  it('a custom list with one bad item anywhere in it is refused, naming the list', () => {
    const kinds = ['number-list', 'string-list', 'address-list'] as const;
    const poisoned = fc.constantFrom(...kinds).chain((kind) => fc.tuple(fc.constant(kind), validItems[kind] as fc.Arbitrary<unknown[]>, badItems[kind] as fc.Arbitrary<unknown>, fc.nat()));
    fc.assert(
      fc.property(validMetrics, poisoned, (report, [kind, items, bad, at]) => {
        const list = [...items];
        list.splice(at % (list.length + 1), 0, bad);
        expect(outcome(() => parseDeviceMetrics(encode({ ...report, custom: { probe: { [kind]: list } } })))).toBe(`custom.probe.${kind}`);
      }),
      { numRuns: 300 },
    );
  });

  it('either parses or is refused with FW_ERR_VALIDATION (never another error, never a crash)', () => {
    const paths: readonly (string | readonly string[])[] = ['network.listening.0.port', 'network.destinations', 'memory.usedBytes', 'at', 'custom', 'network', 'v', 'custom.probe', ['custom', 'probe', 'address-list'], ['custom', 'probe', 'string-list']];
    const withProbe = fc.tuple(validMetrics, customValue).map(([report, probe]) => ({ ...report, custom: { ...report.custom, probe } }));
    const mutated = fc.tuple(withProbe, fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 2 })).map(([report, path, value]) => encode(withField(report, path, value)));
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
