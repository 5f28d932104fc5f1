import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificates, type BenchCertificates } from '../broker/certificates.js';
import { comparisonRows, comparisonTable, Series, type Comparison } from '../broker/comparison.js';
import { buildLoadgen, figure, runLoadgen, type LoadgenReport } from '../broker/loadgen.js';
import { buildEngine, startServer, type RunningServer, type ServerName } from '../broker/servers.js';
import { progress, type Scenario } from '../lib/report.js';

const RUNS = 3;
/** Full handshakes before each connect measurement, so every broker runs warm (JIT, allocator). */
const WARMUP_CONNECTIONS = 300;
/**
 * A run's connects are measured in rounds that alternate between the brokers, all three started
 * and idle meanwhile: the machine's background load then weighs on each broker alike.
 */
const STORM_ROUNDS = 4;
const STORM_CONNECTIONS_PER_ROUND = 500;
const STORM_CONCURRENCY = 16;
const IDLE_CONNECTIONS = 10_000;
const IDLE_CONCURRENCY = 64;
const IDLE_HOLD_SECONDS = 3;
const PAIRS = 50;
const PAYLOAD_BYTES = 100;
/** Messages a pair may have published but not yet delivered. */
const PAIR_WINDOW = 20;
const MESSAGE_WARMUP_SECONDS = 1;
const MESSAGE_SECONDS = 5;
const FANOUT_SUBSCRIBERS = 100;
/** Messages per second from the one publisher: 100,000 deliveries/s to 100 subscribers. */
const FANOUT_RATE = 1000;
const IDLE_RSS_TARGET_MIB = 500;

const ALL: readonly ServerName[] = ['engine', 'floor', 'mosquitto'];
/** The floor only answers CONNECT: it has no message tests. */
const BROKERS: readonly ServerName[] = ['engine', 'mosquitto'];

const comparisons: readonly Comparison[] = [
  { key: 'connect.cpu', metric: 'mTLS connect, full handshake: broker CPU per connect', unit: 'µs', servers: ALL, ratio: { over: 'floor', target: { atMost: 1.1 } } },
  { key: 'connect.rate', metric: 'mTLS connect, full handshake: connects/s (wall, shared cores)', unit: 'events/s', servers: ALL, ratio: { over: 'floor', target: null } },
  { key: 'resume.cpu', metric: 'mTLS connect, TLS 1.3 ticket resumption: broker CPU per connect', unit: 'µs', servers: ALL, ratio: { over: 'mosquitto', target: null } },
  { key: 'resume.share', metric: 'mTLS connect, TLS 1.3 ticket resumption: handshakes resumed', unit: '%', servers: ALL, target: { atLeast: 99 } },
  { key: 'idle.kib', metric: 'memory per idle mTLS connection (RSS delta / connections)', unit: 'KiB', servers: ALL, ratio: { over: 'floor', target: { atMost: 1.1 } } },
  { key: 'idle.rss', metric: `RSS with ${IDLE_CONNECTIONS.toLocaleString('en-US')} idle mTLS connections`, unit: 'MiB', servers: ALL, target: { below: IDLE_RSS_TARGET_MIB } },
  { key: 'qos0.cpu', metric: `QoS 0, ${PAIRS} pairs: broker CPU per delivered message`, unit: 'µs', servers: BROKERS, ratio: { over: 'mosquitto', target: { atMost: 0.9 } } },
  { key: 'qos0.rate', metric: `QoS 0, ${PAIRS} pairs: delivered messages/s`, unit: 'events/s', servers: BROKERS, ratio: { over: 'mosquitto', target: { atLeast: 1 } } },
  { key: 'qos1.cpu', metric: `QoS 1, ${PAIRS} pairs: broker CPU per delivered message`, unit: 'µs', servers: BROKERS, ratio: { over: 'mosquitto', target: { atMost: 0.9 } } },
  { key: 'qos1.rate', metric: `QoS 1, ${PAIRS} pairs: delivered messages/s`, unit: 'events/s', servers: BROKERS, ratio: { over: 'mosquitto', target: { atLeast: 1 } } },
  { key: 'fanout.p50', metric: `fan-out 1→${FANOUT_SUBSCRIBERS} at ${FANOUT_RATE} msg/s: latency p50`, unit: 'µs', servers: BROKERS, ratio: { over: 'mosquitto', target: null } },
  { key: 'fanout.p99', metric: `fan-out 1→${FANOUT_SUBSCRIBERS} at ${FANOUT_RATE} msg/s: latency p99`, unit: 'µs', servers: BROKERS, ratio: { over: 'mosquitto', target: { atMost: 1.2 } } },
  { key: 'fanout.rate', metric: `fan-out 1→${FANOUT_SUBSCRIBERS}: deliveries/s`, unit: 'events/s', servers: BROKERS, ratio: { over: 'mosquitto', target: null } },
  { key: 'fanout.cpu', metric: `fan-out 1→${FANOUT_SUBSCRIBERS}: broker CPU per delivery`, unit: 'µs', servers: BROKERS, ratio: { over: 'mosquitto', target: null } },
];

/** The load generator's CPU, % of one core, during each test. */
const loadgenShares: readonly Comparison[] = [
  { key: 'connect.loadgen', metric: 'connect, full handshake', unit: '%', servers: ALL },
  { key: 'resume.loadgen', metric: 'connect, resumed', unit: '%', servers: ALL },
  { key: 'idle.loadgen', metric: `opening ${IDLE_CONNECTIONS.toLocaleString('en-US')} idle connections`, unit: '%', servers: ALL },
  { key: 'qos0.loadgen', metric: 'QoS 0 pairs', unit: '%', servers: BROKERS },
  { key: 'qos1.loadgen', metric: 'QoS 1 pairs', unit: '%', servers: BROKERS },
  { key: 'fanout.loadgen', metric: 'fan-out', unit: '%', servers: BROKERS },
];

export const broker: Scenario = {
  name: 'broker',
  description: 'broker engine vs the bare Node TLS floor and Mosquitto 2.0 over mutual TLS (ECDSA P-256, TLS 1.3), C load generator',
  async run() {
    await buildEngine();
    const binary = await buildLoadgen();
    const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-broker-'));
    const series = new Series();
    try {
      const certs = await makeCertificates(dir);
      for (let i = 1; i <= RUNS; i += 1) {
        // The order of the brokers rotates from run to run, so none is always first.
        const all = rotate(ALL, i);
        const brokers = rotate(BROKERS, i);
        await measureConnects({ binary, certs, dir, series }, all, i);
        for (const name of all) await measureIdle({ binary, certs, dir, series, name }, i);
        for (const name of brokers) await measureMessages({ binary, certs, dir, series, name }, i);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const errors = series.errors();
    const summary = [
      comparisonTable(comparisons, series),
      '',
      'Load generator CPU, % of one core (the machine has 2; broker and load generator share them):',
      '',
      comparisonTable(loadgenShares, series),
      ...(errors.length === 0 ? [] : ['', `Connection errors: ${errors.join('; ')}`]),
    ].join('\n');
    return { rows: comparisonRows(comparisons, series), raw: { runs: RUNS, series: series.toJSON(), errors }, summary };
  },
};

interface Bench {
  readonly binary: string;
  readonly certs: BenchCertificates;
  readonly dir: string;
  readonly series: Series;
}

interface Measure extends Bench {
  readonly name: ServerName;
}

async function withServer(measure: Measure, body: (server: RunningServer) => Promise<void>): Promise<void> {
  const server = await startServer(measure.name, measure.certs, measure.dir);
  try {
    await body(server);
  } finally {
    await server.stop();
  }
}

/** Full and resumed connects, in rounds alternating between the brokers; each broker's figures are summed over its rounds. */
async function measureConnects(bench: Bench, names: readonly ServerName[], run: number): Promise<void> {
  const { binary, certs, series } = bench;
  const servers: RunningServer[] = [];
  try {
    for (const name of names) servers.push(await startServer(name, certs, bench.dir));
    for (const server of servers) await runLoadgen(binary, 'connect', server, certs, { connections: WARMUP_CONNECTIONS, concurrency: STORM_CONCURRENCY });
    const totals = new Map(servers.map((server) => [server.name, { full: [] as LoadgenReport[], resumed: [] as LoadgenReport[] }]));
    for (let round = 0; round < STORM_ROUNDS; round += 1) {
      for (const server of servers) {
        const options = { connections: STORM_CONNECTIONS_PER_ROUND, concurrency: STORM_CONCURRENCY };
        const total = totals.get(server.name) as { full: LoadgenReport[]; resumed: LoadgenReport[] };
        total.full.push(checked(await runLoadgen(binary, 'connect', server, certs, options), series, 'connect', server.name));
        total.resumed.push(checked(await runLoadgen(binary, 'connect', server, certs, { ...options, resume: true }), series, 'resume', server.name));
      }
    }
    for (const [name, { full, resumed }] of totals) {
      const connects = sum(full, (r) => figure(r, 'connections'));
      const resumedConnects = sum(resumed, (r) => figure(r, 'connections'));
      const fullUs = (sum(full, (r) => r.brokerCpuSeconds) * 1e6) / connects;
      const resumedUs = (sum(resumed, (r) => r.brokerCpuSeconds) * 1e6) / resumedConnects;
      series.add('connect.cpu', name, fullUs);
      series.add('connect.rate', name, connects / sum(full, (r) => r.seconds));
      series.add('connect.loadgen', name, (sum(full, (r) => r.loadgenCpuSeconds) / sum(full, (r) => r.seconds)) * 100);
      series.add('resume.cpu', name, resumedUs);
      series.add('resume.share', name, (sum(resumed, (r) => figure(r, 'resumed')) / resumedConnects) * 100);
      series.add('resume.loadgen', name, (sum(resumed, (r) => r.loadgenCpuSeconds) / sum(resumed, (r) => r.seconds)) * 100);
      progress(`run ${run}/${RUNS} ${name}: full ${fullUs.toFixed(0)} µs/connect, resumed ${resumedUs.toFixed(0)} µs/connect (${connects} + ${resumedConnects} connects)`);
    }
  } finally {
    for (const server of servers) await server.stop();
  }
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}

async function measureIdle(measure: Measure, run: number): Promise<void> {
  const { binary, certs, series, name } = measure;
  await withServer(measure, async (server) => {
    await runLoadgen(binary, 'connect', server, certs, { connections: WARMUP_CONNECTIONS, concurrency: STORM_CONCURRENCY });
    const idle = checked(await runLoadgen(binary, 'idle', server, certs, { connections: IDLE_CONNECTIONS, concurrency: IDLE_CONCURRENCY, hold: IDLE_HOLD_SECONDS }), series, 'idle', name);
    series.add('idle.kib', name, figure(idle, 'perConnectionBytes') / 1024);
    series.add('idle.rss', name, figure(idle, 'rssAfterKb') / 1024);
    series.add('idle.loadgen', name, idle.loadgenCpuShare * 100);
    progress(`run ${run}/${RUNS} ${name}: ${(figure(idle, 'perConnectionBytes') / 1024).toFixed(1)} KiB per idle connection, RSS ${(figure(idle, 'rssAfterKb') / 1024).toFixed(0)} MiB`);
  });
}

async function measureMessages(measure: Measure, run: number): Promise<void> {
  const { binary, certs, series, name } = measure;
  await withServer(measure, async (server) => {
    for (const qos of [0, 1] as const) {
      const options = { pairs: PAIRS, qos, payload: PAYLOAD_BYTES, window: PAIR_WINDOW, warmup: MESSAGE_WARMUP_SECONDS, seconds: MESSAGE_SECONDS };
      const report = checked(await runLoadgen(binary, 'pubsub', server, certs, options), series, `qos${qos}`, name);
      series.add(`qos${qos}.cpu`, name, figure(report, 'perMessageBrokerUs'));
      series.add(`qos${qos}.rate`, name, figure(report, 'messagesPerSecond'));
      series.add(`qos${qos}.loadgen`, name, report.loadgenCpuShare * 100);
      progress(`run ${run}/${RUNS} ${name}: QoS ${qos} ${figure(report, 'perMessageBrokerUs').toFixed(2)} µs/message, ${figure(report, 'messagesPerSecond').toFixed(0)}/s`);
    }
    const options = { subscribers: FANOUT_SUBSCRIBERS, rate: FANOUT_RATE, payload: PAYLOAD_BYTES, warmup: MESSAGE_WARMUP_SECONDS, seconds: MESSAGE_SECONDS };
    const fanout = checked(await runLoadgen(binary, 'fanout', server, certs, options), series, 'fanout', name);
    series.add('fanout.p50', name, figure(fanout, 'p50Us'));
    series.add('fanout.p99', name, figure(fanout, 'p99Us'));
    series.add('fanout.rate', name, figure(fanout, 'deliveriesPerSecond'));
    series.add('fanout.cpu', name, figure(fanout, 'perDeliveryBrokerUs'));
    series.add('fanout.loadgen', name, fanout.loadgenCpuShare * 100);
    progress(`run ${run}/${RUNS} ${name}: fan-out p50 ${figure(fanout, 'p50Us')} µs, p99 ${figure(fanout, 'p99Us')} µs, ${figure(fanout, 'deliveriesPerSecond').toFixed(0)} deliveries/s`);
  });
}

/** Keeps connection errors for the summary: a measurement with errors is reported, not hidden. */
function checked(report: LoadgenReport, series: Series, test: string, name: ServerName): LoadgenReport {
  if (report.errors > 0) series.error(`${test} against ${name}: ${report.errors} (${report.lastError ?? 'unknown'})`);
  return report;
}

function rotate<T>(items: readonly T[], run: number): T[] {
  const shift = (run - 1) % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
