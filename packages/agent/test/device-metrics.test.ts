import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { arch, release, tmpdir, totalmem, type, uptime } from 'node:os';
import { join } from 'node:path';
import { FleetwardError, MAX_CUSTOM_LIST_ITEMS, MAX_METRICS_BYTES, parseDeviceMetrics, parseInventory, type DeviceMetricsReport } from '@fleetward/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectDeviceMetrics, collectInventory, CpuMeter, powerSupplyBattery, scriptedBattery, type DeviceMetricsSources, type DroppedCustomMetric } from '@fleetward/agent';
import { summarizeNetwork } from '../src/metrics/device-metrics.js';
import { parseOsRelease } from '../src/metrics/os-release.js';
import { externalTraffic, isEstablished, isListening, parseProcNetDev, parseProcNetSockets, type ProcSocket } from '../src/metrics/proc-net.js';
import { countProcesses, cpuPercent, parseCpuTimes, parseMeminfo } from '../src/metrics/proc-system.js';

const TCP_HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const TCP6_HEADER = '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
/** Captured from this machine: epmd listening on ::1 port 4369. */
const TCP6_EPMD = '   0: 00000000000000000000000001000000:1111 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 6533 1 000000000dcd72b7 100 0 0 10 0';
/** Captured from this machine: a connection to a `::` listener made to ::ffff:127.0.0.1. */
const TCP6_V4_MAPPED = '   3: 0000000000000000FFFF00000100007F:8C3A 0000000000000000FFFF00000100007F:888F 01 00000000:00000000 00:00000000 00000000     0        0 24136 2 000000002adc262b 20 0 0 10 -1';
const PROC_NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   37439     503    0    0    0     0          0         0    37439     503    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 135373335    7425    0    0    0     0          0         0   729397    5955    0    0    0     0       0          0
 wlan0:1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
`;

const noCounters: DeviceMetricsSources['counters'] = () => ({ agentRestarts: 0, authFailures: 0 });
let scratch: string;
beforeAll(async () => void (scratch = await mkdtemp(join(tmpdir(), 'fw-metrics-'))));
afterAll(() => rm(scratch, { recursive: true, force: true }));

/** The code of a FleetwardError a promise rejects with (and its field, for validation). */
async function refusal(promise: Promise<unknown>): Promise<string> {
  const error: unknown = await promise.then(() => null, (e: unknown) => e);
  if (!(error instanceof FleetwardError)) throw new Error(`expected a FleetwardError, got ${String(error)}`);
  return typeof error.details.field === 'string' ? `${error.code} ${error.details.field}` : error.code;
}

describe('/proc/net parsers', () => {
  it('reads TCP listeners and connections on IPv4, with the header skipped', () => {
    const text = `${TCP_HEADER}
   0: 0100007F:6448 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 6734 1 00000000d9ba83d1 100 0 0 10 0
   6: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 216 1 0000000098e5a88e 100 0 0 10 0
  26: 0100007F:B567 0A0200C0:CB12 01 00000000:00000000 00:00000000 00000000     0        0 15258 1 000000000098de50 20 0 0 10 -1
  27: 0100007F:B568 0A0200C0:01BB 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
`;
    const sockets = parseProcNetSockets(text, 'tcp');
    expect(sockets).toHaveLength(4);
    expect(sockets.filter(isListening).map((s) => `${s.localAddress}:${s.localPort}`)).toEqual(['127.0.0.1:25672', '0.0.0.0:2024']);
    // TIME_WAIT (06) is a closed connection, not an established one.
    expect(sockets.filter(isEstablished)).toEqual([{ protocol: 'tcp', localAddress: '127.0.0.1', localPort: 46439, remoteAddress: '192.0.2.10', remotePort: 51986, state: 1 }]);
  });

  it('reads IPv6 (this machine\'s epmd on ::1, a v4-mapped peer shown as IPv4, a global address)', () => {
    const global = '   5: B80D0120000000000000000001000000:0016 B80D01200000000000000000FE000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 0 0 10 -1';
    const sockets = parseProcNetSockets([TCP6_HEADER, TCP6_EPMD, TCP6_V4_MAPPED, global].join('\n'), 'tcp');
    expect(sockets.map((s) => [s.localAddress, s.localPort, s.remoteAddress, s.remotePort, s.state])).toEqual([
      ['::1', 4369, '::', 0, 0x0a],
      ['127.0.0.1', 35898, '127.0.0.1', 34959, 0x01],
      ['2001:db8::1', 22, '2001:db8::fe', 54321, 0x01],
    ]);
  });

  it('reads addresses in a big-endian kernel\'s order when told to', () => {
    const [socket] = parseProcNetSockets(`${TCP_HEADER}\n   0: 7F000001:0016 C000020A:D431 01 0 0 0 0 0 0`, 'tcp', 'BE');
    expect(socket).toMatchObject({ localAddress: '127.0.0.1', localPort: 22, remoteAddress: '192.0.2.10' });
  });

  it('calls an unconnected bound UDP socket listening, a connected one not', () => {
    const text = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 3441: 0100007F:D866 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 15256 2 0000000085abfda3 0
 3442: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 15257 2 0000000085abfda4 0
 3443: 0100007F:D867 0A0200C0:0035 01 00000000:00000000 00:00000000 00000000     0        0 15258 2 0000000085abfda5 0
`;
    const sockets = parseProcNetSockets(text, 'udp');
    expect(sockets.filter(isListening).map((s) => s.localPort)).toEqual([0xd866, 5353]);
    expect(sockets.filter(isEstablished)).toEqual([]);
  });

  it('sums traffic over every interface but loopback', () => {
    const interfaces = parseProcNetDev(PROC_NET_DEV);
    expect(interfaces.map((i) => i.name)).toEqual(['lo', 'ifb0', 'eth0', 'wlan0']);
    expect(externalTraffic(interfaces)).toEqual({ bytesIn: 135_374_335, packetsIn: 7435, bytesOut: 731_397, packetsOut: 5975 });
  });

  it('writes any IPv6 address the kernel prints in RFC 5952 form (as the WHATWG URL parser does)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 1, max: 65_535 }), (bytes, port) => {
        const words = [0, 4, 8, 12].map((i) => Buffer.from(bytes.subarray(i, i + 4)).reverse().toString('hex').toUpperCase());
        const line = `   0: ${words.join('')}:${port.toString(16).toUpperCase().padStart(4, '0')} ${'0'.repeat(32)}:0000 0A 0 0 0 0 0 0`;
        const [socket] = parseProcNetSockets(line, 'tcp');
        const groups = Array.from({ length: 8 }, (_, g) => Buffer.from(bytes).readUInt16BE(g * 2).toString(16));
        const canonical = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
        const expected = /^::ffff:[0-9a-f]+:[0-9a-f]+$/.test(canonical) ? bytes.subarray(12).join('.') : canonical;
        expect(socket).toMatchObject({ localAddress: expected, localPort: port });
      }),
    );
  });

  it('never throws on arbitrary text, and only returns sockets with valid ports and addresses', () => {
    const lines = fc.array(fc.oneof(fc.string(), fc.constantFrom(TCP6_EPMD, TCP6_V4_MAPPED, TCP_HEADER), fc.stringMatching(/^ *\d+: [0-9A-F]{8}:[0-9A-F]{4} [0-9A-F]{8}:[0-9A-F]{4} [0-9A-F]{2}.*$/)), { maxLength: 20 }).map((l) => l.join('\n'));
    fc.assert(
      fc.property(lines, fc.constantFrom('tcp' as const, 'udp' as const), (text, protocol) => {
        for (const socket of parseProcNetSockets(text, protocol)) {
          expect(socket.localPort).toBeLessThanOrEqual(65_535);
          expect(socket.localAddress).toMatch(/^[0-9a-f:.]+$/);
        }
        parseProcNetDev(text);
        parseMeminfo(text);
        parseCpuTimes(text);
        parseOsRelease(text);
      }),
      { numRuns: 500 },
    );
  });
});

describe('/proc system parsers', () => {
  it('counts memory in use as total minus available, not minus free (page cache is reclaimable)', () => {
    const meminfo = 'MemTotal:        8000000 kB\nMemFree:          200000 kB\nMemAvailable:    6000000 kB\nCached:          5000000 kB\n';
    expect(parseMeminfo(meminfo)).toEqual({ totalBytes: 8_192_000_000, usedBytes: 2_048_000_000 });
    expect(parseMeminfo('MemTotal: 8000000 kB\n')).toBeNull();
  });

  it('computes the busy share between two /proc/stat samples, I/O wait counted as idle', () => {
    const before = parseCpuTimes('cpu  12380 0 6118 30392 397 0 240 0 0 0\ncpu0 6190 0 3059 15196 198 0 120 0 0 0\n');
    const after = parseCpuTimes('cpu  12480 0 6168 30392 447 0 240 0 0 0\ncpu0 1 2 3 4\n');
    expect(before).toEqual({ busy: 18_738, idle: 30_789 });
    expect(cpuPercent(before!, after!)).toBe(75);
    expect(cpuPercent(after!, after!)).toBe(0);
  });

  it('counts processes as the numeric entries of /proc', () => {
    expect(countProcesses(['1', '42', 'self', 'net', '0', '007', 'thread-self', '31337'])).toBe(3);
  });

  it('reads os-release values as a shell would, quoted or not', () => {
    expect(parseOsRelease('# comment\nNAME="Debian GNU/Linux"\nPRETTY_NAME="Acme \\"Edge\\" OS 2.0 \\\\ \\$HOME"\nID=debian\nVERSION=\'12 (bookworm)\'\nBROKEN="unterminated\n')).toEqual({
      NAME: 'Debian GNU/Linux',
      PRETTY_NAME: 'Acme "Edge" OS 2.0 \\ $HOME',
      ID: 'debian',
      VERSION: '12 (bookworm)',
    });
  });
});

describe('network summary', () => {
  const socket = (protocol: 'tcp' | 'udp', localAddress: string, localPort: number, state: number, remoteAddress = '0.0.0.0'): ProcSocket => ({ protocol, localAddress, localPort, remoteAddress, remotePort: remoteAddress === '0.0.0.0' ? 0 : 443, state });

  it('lists each listening socket once, sorted, and each destination once', () => {
    const sockets = [socket('udp', '0.0.0.0', 5353, 7), socket('tcp', '::', 22, 10), socket('tcp', '0.0.0.0', 22, 10), socket('tcp', '0.0.0.0', 22, 10), socket('tcp', '10.0.0.2', 40000, 1, '192.0.2.10'), socket('tcp', '10.0.0.2', 40001, 1, '192.0.2.10')];
    expect(summarizeNetwork(sockets, parseProcNetDev(PROC_NET_DEV))).toEqual({
      listening: [
        { protocol: 'tcp', address: '0.0.0.0', port: 22 },
        { protocol: 'tcp', address: '::', port: 22 },
        { protocol: 'udp', address: '0.0.0.0', port: 5353 },
      ],
      listeningTotal: 3,
      established: 2,
      destinations: ['192.0.2.10'],
      bytesIn: 135_374_335,
      packetsIn: 7435,
      bytesOut: 731_397,
      packetsOut: 5975,
    });
  });

  it('cuts a flood of sockets at the protocol\'s bounds but still counts them all', () => {
    const sockets = Array.from({ length: 1000 }, (_, i) => [socket('tcp', '0.0.0.0', 60_000 - i, 10), socket('tcp', '10.0.0.2', 1000 + i, 1, `198.51.${i >> 8}.${i & 255}`)]).flat();
    const network = summarizeNetwork(sockets, []);
    expect(network.listening).toHaveLength(256);
    expect(network.listening[0]?.port).toBe(59_001);
    expect(network.listeningTotal).toBe(1000);
    expect(network.destinations).toHaveLength(256);
    expect(network.established).toBe(1000);
    expect(parseDeviceMetrics(Buffer.from(JSON.stringify({ v: 1, at: new Date().toISOString(), network, processes: 1, memory: { totalBytes: 1, usedBytes: 1 }, cpuPercent: 0, disk: { totalBytes: 1, usedBytes: 0, freeBytes: 1 }, uptimeSeconds: 1, agentRestarts: 0, authFailures: 0, batteryPercent: null, custom: {} }))).network).toEqual(network);
  });
});

describe('collected on this machine', () => {
  /** A loopback address of our own (all of 127/8 is loopback on Linux), so other processes' sockets cannot be taken for ours. */
  const host = `127.77.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
  const collect = (extra: Partial<DeviceMetricsSources> = {}) => collectDeviceMetrics({ counters: noCounters, battery: scriptedBattery([null]), firstCpuSampleMs: 50, ...extra });
  const portOf = (server: Server) => (server.address() as AddressInfo).port;
  const closeServer = (server: Server) => new Promise((resolve) => server.close(resolve));
  const listens = (report: DeviceMetricsReport, protocol: string, address: string, port: number) => report.network.listening.some((s) => s.protocol === protocol && s.address === address && s.port === port);

  it('shows a TCP server (IPv4 and IPv6) and a UDP socket as listening while open, and not after close', async () => {
    const [tcp4, tcp6] = [createServer().listen(0, host), createServer().listen(0, '::1')];
    await Promise.all([once(tcp4, 'listening'), once(tcp6, 'listening')]);
    const udp: UdpSocket = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, host, resolve));
    const [tcp4Port, tcp6Port, udpPort] = [portOf(tcp4), portOf(tcp6), udp.address().port];

    const open = await collect();
    expect(listens(open, 'tcp', host, tcp4Port)).toBe(true);
    expect(listens(open, 'tcp', '::1', tcp6Port)).toBe(true);
    expect(listens(open, 'udp', host, udpPort)).toBe(true);
    expect(open.network.listeningTotal).toBeGreaterThanOrEqual(3);

    await Promise.all([closeServer(tcp4), closeServer(tcp6), new Promise<void>((resolve) => udp.close(resolve))]);
    const closed = await collect();
    expect([listens(closed, 'tcp', host, tcp4Port), listens(closed, 'tcp', '::1', tcp6Port), listens(closed, 'udp', host, udpPort)]).toEqual([false, false, false]);
  });

  it('shows an established connection\'s peer among the destinations while it is open', async () => {
    const accepted: Socket[] = [];
    const server = createServer((s) => accepted.push(s)).listen(0, host);
    await once(server, 'listening');
    const client = connect(portOf(server), host);
    await once(client, 'connect');
    await expect.poll(() => accepted.length).toBe(1);

    const open = await collect();
    expect(open.network.destinations).toContain(host);
    expect(open.network.established).toBeGreaterThanOrEqual(2);

    client.destroy();
    accepted[0]!.destroy();
    await closeServer(server);
    expect((await collect()).network.destinations).not.toContain(host);
  });

  it('reports the machine\'s memory, disk, uptime and processes, and the agent\'s counters, in a report the server accepts', async () => {
    const report = await collect({ diskPath: scratch, counters: () => Promise.resolve({ agentRestarts: 3, authFailures: 17 }), custom: () => ({ 'queue.depth': 4 }) });
    expect(parseDeviceMetrics(Buffer.from(JSON.stringify(report)))).toEqual(report);
    const disk = await statfs(scratch);
    expect(report.memory.totalBytes).toBe(totalmem());
    expect(report.memory.usedBytes).toBeGreaterThan(0);
    expect(report.disk.totalBytes).toBe(disk.blocks * disk.bsize);
    expect(Math.abs(report.uptimeSeconds - uptime())).toBeLessThan(5);
    expect(report.processes).toBeGreaterThanOrEqual(2);
    expect(report.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(report.cpuPercent).toBeLessThanOrEqual(100);
    expect(report).toMatchObject({ v: 1, agentRestarts: 3, authFailures: 17, batteryPercent: null, custom: { 'queue.depth': 4 } });
    expect(report.network.bytesIn).toBeGreaterThan(0);
  });

  it('refuses to produce a report the server would refuse (a broken counter names its field)', async () => {
    expect(await refusal(collect({ counters: () => ({ agentRestarts: -1, authFailures: 0 }) }))).toBe('FW_ERR_VALIDATION agentRestarts');
  });
});

describe('collected from a procfs tree', () => {
  /** A small procfs: real files in a folder, with numbers we choose. */
  async function procTree(stat: string): Promise<string> {
    const root = await mkdtemp(join(scratch, 'proc-'));
    await mkdir(join(root, 'net'));
    await Promise.all(['1', '2', '77', 'self', 'sys'].map((entry) => mkdir(join(root, entry))));
    await writeFile(join(root, 'stat'), stat);
    await writeFile(join(root, 'meminfo'), 'MemTotal: 1000 kB\nMemAvailable: 250 kB\n');
    await writeFile(join(root, 'net', 'dev'), PROC_NET_DEV);
    // A kernel built without IPv6 has no tcp6 or udp6.
    await writeFile(join(root, 'net', 'tcp'), `${TCP_HEADER}\n   6: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 216 1 0000000098e5a88e 100 0 0 10 0\n`);
    await writeFile(join(root, 'net', 'udp'), '');
    return root;
  }

  it('reports CPU over the interval since the agent\'s previous report', async () => {
    const procRoot = await procTree('cpu  1000 0 0 9000 0 0 0 0 0 0\n');
    const cpu = new CpuMeter();
    const first = await collectDeviceMetrics({ procRoot, cpu, counters: noCounters, battery: scriptedBattery([null]), firstCpuSampleMs: 10 });
    expect(first).toMatchObject({ cpuPercent: 0, processes: 3, memory: { totalBytes: 1_024_000, usedBytes: 768_000 } });
    expect(first.network).toMatchObject({ listening: [{ protocol: 'tcp', address: '0.0.0.0', port: 2024 }], bytesIn: 135_374_335 });
    await writeFile(join(procRoot, 'stat'), 'cpu  1900 0 0 9100 0 0 0 0 0 0\n');
    expect((await collectDeviceMetrics({ procRoot, cpu, counters: noCounters, battery: scriptedBattery([null]) })).cpuPercent).toBe(90);
  });

  it('fails with a stable code, not a half-empty report, when procfs or the disk path is missing or procfs is garbled', async () => {
    expect(await refusal(collectDeviceMetrics({ procRoot: join(scratch, 'no-proc'), counters: noCounters }))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusal(collectDeviceMetrics({ diskPath: join(scratch, 'no-data-partition'), counters: noCounters, firstCpuSampleMs: 10 }))).toBe('FW_ERR_NOT_FOUND');
    const garbled = await procTree('not a stat file\n');
    expect(await refusal(collectDeviceMetrics({ procRoot: garbled, counters: noCounters, firstCpuSampleMs: 10 }))).toBe('FW_ERR_INTERNAL');
  });
});

describe('custom metrics from the application', () => {
  const longest = 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255';
  let procRoot: string;
  beforeAll(async () => {
    procRoot = await mkdtemp(join(scratch, 'proc-custom-'));
    await mkdir(join(procRoot, 'net'));
    await mkdir(join(procRoot, '1'));
    await writeFile(join(procRoot, 'stat'), 'cpu  1000 0 0 9000 0 0 0 0 0 0\n');
    await writeFile(join(procRoot, 'meminfo'), 'MemTotal: 1000 kB\nMemAvailable: 250 kB\n');
    await writeFile(join(procRoot, 'net', 'dev'), PROC_NET_DEV);
  });
  /** A report with the application's custom metrics, and what was left out of it. */
  async function reportWith(custom: DeviceMetricsSources['custom']): Promise<{ report: DeviceMetricsReport; dropped: DroppedCustomMetric[] }> {
    const dropped: DroppedCustomMetric[] = [];
    const report = await collectDeviceMetrics({ procRoot, counters: noCounters, battery: scriptedBattery([null]), firstCpuSampleMs: 1, custom, onCustomDropped: (d) => dropped.push(d) });
    return { report, dropped };
  }

  it('sends numbers and lists of numbers, strings and addresses, tagged with their kind, in a report the server accepts', async () => {
    const custom = { 'queue.depth': 4, 'modbus.peers': { 'address-list': ['10.20.0.5', '2001:db8::5'] }, services: { 'string-list': ['mosquitto', 'plc-runtime'] }, 'service.ports': { 'number-list': [502, 1883] }, 'vpn.peers': { 'address-list': [] } };
    const { report, dropped } = await reportWith(() => Promise.resolve(custom));
    expect(report.custom).toEqual(custom);
    expect(parseDeviceMetrics(Buffer.from(JSON.stringify(report)))).toEqual(report);
    expect(dropped).toEqual([]);
  });

  it('leaves out each value the server would refuse, alone, and says why; the report still goes out', async () => {
    // A hole: JSON would send null there.
    const sparse: number[] = [1];
    sparse[2] = 3;
    const { report, dropped } = await reportWith(() => ({
      ok: 1,
      'modbus.peers': { 'address-list': ['10.20.0.5', 'plc-7.local'] },
      untagged: [1, 2] as unknown as number,
      services: { 'string-list': ['sshd', 'x'.repeat(129)] },
      nan: Number.NaN,
      missing: undefined as unknown as number,
      sparse: { 'number-list': sparse },
      'Not A Name': 1,
    }));
    expect(report.custom).toEqual({ ok: 1 });
    expect(report.network.bytesIn).toBe(135_374_335);
    expect(dropped.map((d) => d.name)).toEqual(['modbus.peers', 'untagged', 'services', 'nan', 'missing', 'sparse', 'Not A Name']);
    expect(dropped[0]?.reason).toMatch(/custom\.modbus\.peers\.address-list/);
  });

  it('keeps the first 32; a source that fails or returns no object costs the custom metrics, not the report', async () => {
    const many = await reportWith(() => Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${i}`, i])));
    expect(Object.keys(many.report.custom)).toHaveLength(32);
    expect(many.dropped.map((d) => d.name)).toEqual(Array.from({ length: 8 }, (_, i) => `m${32 + i}`));
    const failing = await reportWith(() => Promise.reject(new Error('modbus poller is down')));
    expect(failing.report.custom).toEqual({});
    expect(failing.dropped).toEqual([{ name: null, reason: 'the custom metrics source failed: modbus poller is down' }]);
    const notAnObject = await reportWith(() => [1, 2] as unknown as Record<string, number>);
    expect(notAnObject.dropped).toEqual([{ name: null, reason: expect.stringMatching(/object/) }]);
  });

  it('leaves out the largest lists when together they would pass the report\'s size limit, keeping the rest', async () => {
    const list = (items: number) => ({ 'address-list': Array.from({ length: items }, () => longest) });
    const custom = { 'queue.depth': 7, huge: list(MAX_CUSTOM_LIST_ITEMS), a: list(250), b: list(250), c: list(250), d: list(250), e: list(250) };
    const { report, dropped } = await reportWith(() => custom);
    expect(dropped).toEqual([{ name: 'huge', reason: expect.stringMatching(/larger than 65536 bytes/) }]);
    expect(Object.keys(report.custom).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'queue.depth']);
    expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThanOrEqual(MAX_METRICS_BYTES);
  });
});

describe('battery', () => {
  async function powerSupplies(supplies: Record<string, Record<string, string>>): Promise<string> {
    const root = await mkdtemp(join(scratch, 'power-'));
    for (const [name, files] of Object.entries(supplies)) {
      await mkdir(join(root, name));
      for (const [file, text] of Object.entries(files)) await writeFile(join(root, name, file), `${text}\n`);
    }
    return root;
  }

  it('reads the system battery\'s capacity, skipping mains adapters and peripherals\' batteries', async () => {
    const root = await powerSupplies({ AC: { type: 'Mains', online: '1' }, 'hid-mouse-battery': { type: 'Battery', scope: 'Device', capacity: '5' }, BAT0: { type: 'Battery', capacity: '76' } });
    expect(await powerSupplyBattery(root)()).toBe(76);
  });

  it('is null, not a crash, with no power_supply folder, no battery, or an unreadable capacity', async () => {
    expect(await powerSupplyBattery(join(scratch, 'no-such-folder'))()).toBeNull();
    expect(await powerSupplyBattery(await powerSupplies({ AC: { type: 'Mains' } }))()).toBeNull();
    expect(await powerSupplyBattery(await powerSupplies({ BAT0: { type: 'Battery', capacity: 'unknown' } }))()).toBeNull();
    expect(await powerSupplyBattery(await powerSupplies({ BAT0: { type: 'Battery' } }))()).toBeNull();
    const report = await collectDeviceMetrics({ counters: noCounters, battery: powerSupplyBattery(join(scratch, 'no-such-folder')), firstCpuSampleMs: 10 });
    expect(report.batteryPercent).toBeNull();
  });

  it('plays a script for the simulator; a plugin\'s out-of-range level or failure is reported as unknown', async () => {
    const battery = scriptedBattery([90, 80]);
    expect([await battery(), await battery(), await battery()]).toEqual([90, 80, 80]);
    const report = await collectDeviceMetrics({ counters: noCounters, battery: scriptedBattery([150]), firstCpuSampleMs: 10 });
    expect(report.batteryPercent).toBeNull();
    const failing = await collectDeviceMetrics({ counters: noCounters, battery: () => Promise.reject(new Error('I2C bus timeout')), firstCpuSampleMs: 10 });
    expect(failing.batteryPercent).toBeNull();
  });
});

describe('inventory', () => {
  it('hashes the firmware image (streamed, several chunks) and names the OS', async () => {
    const image = join(scratch, 'firmware.img');
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(image, bytes);
    const sbomRef = `sha256:${createHash('sha256').update('sbom').digest('hex')}`;
    const report = await collectInventory({ agentVersion: '0.1.0', firmwareVersion: '2026.03.0', imagePath: image, sbomRef });
    expect(report.imageHash).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    const osRelease = parseOsRelease(await readFile('/etc/os-release', 'utf8').catch(() => ''));
    expect(report).toMatchObject({ v: 1, agentVersion: '0.1.0', firmwareVersion: '2026.03.0', sbomRef, os: { type: type(), release: release(), arch: arch(), name: osRelease.PRETTY_NAME ?? null } });
    expect(parseInventory(Buffer.from(JSON.stringify(report)))).toEqual(report);
  });

  it('reports no image hash, SBOM or OS name when the device has none', async () => {
    const report = await collectInventory({ agentVersion: '0.1.0', firmwareVersion: '1', osReleasePaths: [join(scratch, 'missing-os-release')] });
    expect(report).toMatchObject({ imageHash: null, sbomRef: null, os: { name: null } });
  });

  it('refuses a missing image and a configuration the server would refuse', async () => {
    expect(await refusal(collectInventory({ agentVersion: '0.1.0', firmwareVersion: '1', imagePath: join(scratch, 'missing.img') }))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusal(collectInventory({ agentVersion: '0.1.0', firmwareVersion: '1', sbomRef: 'javascript:alert(1)' }))).toBe('FW_ERR_VALIDATION sbomRef');
    expect(await refusal(collectInventory({ agentVersion: '0.1.0 beta', firmwareVersion: '1' }))).toBe('FW_ERR_VALIDATION agentVersion');
  });
});
