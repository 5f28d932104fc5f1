import { readdir, readFile, statfs } from 'node:fs/promises';
import { endianness, uptime } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FleetwardError, MAX_DESTINATIONS, MAX_LISTENING_SOCKETS, parseDeviceMetrics, type CustomMetricValue, type DeviceMetricsReport, type ListeningSocket, type NetworkMetrics } from '@fleetward/protocol';
import { powerSupplyBattery, type BatterySource } from './battery.js';
import { CpuMeter } from './cpu-meter.js';
import { acceptedCustomMetrics, fitCustomMetrics, type CustomMetrics, type OnCustomDropped } from './custom-metrics.js';
import { externalTraffic, isEstablished, isListening, parseProcNetDev, parseProcNetSockets, type Endianness, type InterfaceCounters, type ProcSocket } from './proc-net.js';
import { countProcesses, parseCpuTimes, parseMeminfo, type CpuTimes } from './proc-system.js';

/** Counters only the agent knows, kept by it across restarts (the server takes deltas). */
export interface AgentCounters {
  readonly agentRestarts: number;
  readonly authFailures: number;
}

export interface DeviceMetricsSources {
  readonly counters: () => AgentCounters | Promise<AgentCounters>;
  /** Where procfs is mounted (default `/proc`). */
  readonly procRoot?: string;
  /** A path on the filesystem whose space is reported (default `/`): the data partition, usually. */
  readonly diskPath?: string;
  /** Default: the Linux power_supply class, null on a device without a battery. */
  readonly battery?: BatterySource;
  /** The application's custom metrics (`AgentOptions.customMetrics`); a value the server would refuse is dropped alone. */
  readonly custom?: () => CustomMetrics | Promise<CustomMetrics>;
  /** Told about each custom metric left out of the report, and why. */
  readonly onCustomDropped?: OnCustomDropped;
  /**
   * The agent's meter, kept between reports so CPU is the share over the reporting interval.
   * Without one (or on its first use) CPU is sampled over `firstCpuSampleMs`.
   */
  readonly cpu?: CpuMeter;
  /** Default 250 ms: long enough for 25 clock ticks at USER_HZ 100. */
  readonly firstCpuSampleMs?: number;
  /** Byte order of addresses in /proc/net (default: this host's). */
  readonly endianness?: Endianness;
  readonly clock?: { now(): Date };
}

const NET_TABLES = [
  ['tcp', 'tcp'],
  ['tcp6', 'tcp'],
  ['udp', 'udp'],
  ['udp6', 'udp'],
] as const;

/**
 * One `$fw/things/{thing}/metrics` report. CPU comes from two /proc/stat samples: the busy share of
 * CPU time, the figure a detection threshold means, where the load average counts waiting tasks (not
 * a percent) and process.cpuUsage() only the agent itself. The report is checked with the server's
 * own parser before it is returned, so the device never publishes what the server would refuse.
 */
export async function collectDeviceMetrics(sources: DeviceMetricsSources): Promise<DeviceMetricsReport> {
  const dropped = sources.onCustomDropped ?? (() => undefined);
  const procRoot = sources.procRoot ?? '/proc';
  const diskPath = sources.diskPath ?? '/';
  const order = sources.endianness ?? endianness();
  const [tables, dev, meminfo, entries, disk, battery, counters, custom, cpuPercent] = await Promise.all([
    // A kernel without IPv6 has no tcp6/udp6: no sockets there, not a failure.
    Promise.all(NET_TABLES.map(([file, protocol]) => readFile(join(procRoot, 'net', file), 'utf8').then((text) => parseProcNetSockets(text, protocol, order), () => []))),
    readProc(procRoot, 'net/dev'),
    readProc(procRoot, 'meminfo'),
    readdir(procRoot).catch((error: unknown) => Promise.reject(unreadable(procRoot, error))),
    statfs(diskPath).catch((error: unknown) => Promise.reject(unreadable(diskPath, error))),
    (sources.battery ?? powerSupplyBattery())().catch(() => null),
    sources.counters(),
    customMetrics(sources.custom, dropped),
    measureCpu(procRoot, sources.cpu ?? new CpuMeter(), sources.firstCpuSampleMs ?? 250),
  ]);
  const memory = parseMeminfo(meminfo);
  if (memory === null) throw malformed(join(procRoot, 'meminfo'));
  const report: DeviceMetricsReport = {
    v: 1,
    at: (sources.clock?.now() ?? new Date()).toISOString(),
    network: summarizeNetwork(tables.flat(), parseProcNetDev(dev)),
    processes: countProcesses(entries),
    memory,
    cpuPercent,
    disk: { totalBytes: disk.blocks * disk.bsize, usedBytes: (disk.blocks - disk.bfree) * disk.bsize, freeBytes: disk.bavail * disk.bsize },
    uptimeSeconds: Math.floor(uptime()),
    agentRestarts: counters.agentRestarts,
    authFailures: counters.authFailures,
    // A failing plugin or its nonsense is not a reading; it must not cost the whole report either.
    batteryPercent: battery !== null && Number.isFinite(battery) && battery >= 0 && battery <= 100 ? battery : null,
    custom,
  };
  return parseDeviceMetrics(new TextEncoder().encode(JSON.stringify(fitCustomMetrics(report, dropped))));
}

/** The application's custom metrics that can be sent; a source that fails costs them, not the report (like the battery). */
async function customMetrics(source: DeviceMetricsSources['custom'], dropped: OnCustomDropped): Promise<Record<string, CustomMetricValue>> {
  if (source === undefined) return {};
  try {
    return acceptedCustomMetrics(await source(), dropped);
  } catch (error) {
    dropped({ name: null, reason: `the custom metrics source failed: ${error instanceof Error ? error.message : String(error)}` });
    return {};
  }
}

/**
 * The network part of a report. Listening sockets are deduplicated (SO_REUSEPORT opens several on
 * one address and port) and sorted, so the cut at MAX_LISTENING_SOCKETS and the destination list
 * are the same from one report to the next and a detection rule sees changes, not reordering.
 */
export function summarizeNetwork(sockets: readonly ProcSocket[], interfaces: readonly InterfaceCounters[]): NetworkMetrics {
  const listening = new Map<string, ListeningSocket>();
  for (const socket of sockets.filter(isListening)) {
    listening.set(`${socket.protocol} ${socket.localAddress} ${socket.localPort}`, { protocol: socket.protocol, address: socket.localAddress, port: socket.localPort });
  }
  const sorted = [...listening.values()].sort((a, b) => byCodeUnits(a.protocol, b.protocol) || a.port - b.port || byCodeUnits(a.address, b.address));
  const established = sockets.filter(isEstablished);
  const destinations = [...new Set(established.map((socket) => socket.remoteAddress))].sort();
  return {
    listening: sorted.slice(0, MAX_LISTENING_SOCKETS),
    listeningTotal: sorted.length,
    established: established.length,
    destinations: destinations.slice(0, MAX_DESTINATIONS),
    ...externalTraffic(interfaces),
  };
}

/** Not localeCompare: the order must not depend on the device's locale. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function measureCpu(procRoot: string, meter: CpuMeter, firstSampleMs: number): Promise<number> {
  const sample = async (): Promise<CpuTimes> => parseCpuTimes(await readProc(procRoot, 'stat')) ?? Promise.reject(malformed(join(procRoot, 'stat')));
  const percent = meter.next(await sample());
  if (percent !== null) return percent;
  await sleep(firstSampleMs);
  return meter.next(await sample()) as number;
}

async function readProc(procRoot: string, file: string): Promise<string> {
  const path = join(procRoot, file);
  return readFile(path, 'utf8').catch((error: unknown) => Promise.reject(unreadable(path, error)));
}

function unreadable(path: string, error: unknown): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `${path} cannot be read`, { path }, { cause: error });
}

function malformed(path: string): FleetwardError {
  return new FleetwardError('FW_ERR_INTERNAL', `${path} is not in the format proc(5) describes`, { path });
}
