/**
 * `npm run bench -- fleet`: one node (its own process, `fleetward serve`) and a simulated fleet
 * (this process, fleetward-sim's SimulatedFleet: real agents, each with its own key, certificate
 * from claim provisioning, mTLS session and queue). Measures the fleet's connect time, the
 * server's CPU and RSS under 1 message / 10 s per device, p99 publish-to-subscriber latency (one
 * device in ten receives its own telemetry), reconnection of the whole fleet after a server
 * restart, and one idle `fleetward-agent` process's RSS.
 * BENCH_FLEET_DEVICES (default 10,000; BENCH_QUICK=1: 500), BENCH_FLEET_SECONDS (120; quick 20),
 * BENCH_FLEET_HANDSHAKES (the node's handshakes per second, 500), BENCH_FLEET_RESTARTS (3; quick 1).
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { freePort } from '../updates/serve.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SimulatedFleet } from '../../packages/agent/src/sim/fleet-simulator.js';
import { NodeApi } from '../../packages/agent/src/sim/node-api.js';
import { parseSimOptions } from '../../packages/agent/src/sim/sim-options.js';
import { brokerCpuSeconds, rssKib } from '../gateway/proc-stat.js';
import { missingRow, progress, row, type Row, type Scenario } from '../lib/report.js';

const CLI = fileURLToPath(new URL('../../packages/server/bin/fleetward.js', import.meta.url));
const AGENT = fileURLToPath(new URL('../../packages/agent/bin/fleetward-agent.js', import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';
const REQUESTED_DEVICES = Number(process.env.BENCH_FLEET_DEVICES ?? (QUICK ? 500 : 10_000));
/** Each simulated device holds two descriptors (TLS socket, queue log): stay under this process's open-file limit. */
const FD_LIMIT = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim()) || 1024;
const DEVICES = Math.min(REQUESTED_DEVICES, Math.floor((FD_LIMIT - 2_000) / 2));
const SECONDS = Number(process.env.BENCH_FLEET_SECONDS ?? (QUICK ? 20 : 120));
/** The simulator's allocator (bench/run.sh); the processes measured here are started without it. */
const { LD_PRELOAD: SIMULATOR_PRELOAD, ...MEASURED_ENV } = process.env;
/** The configured handshake rate the reconnecting fleet must stay under (handshakes per second, node-wide; BENCH_FLEET_HANDSHAKES). */
const HANDSHAKES_PER_SECOND = Number(process.env.BENCH_FLEET_HANDSHAKES ?? 500);
/** Server restarts, each followed by the whole fleet's reconnection (BENCH_FLEET_RESTARTS). */
const RESTARTS = Number(process.env.BENCH_FLEET_RESTARTS ?? (QUICK ? 1 : 3));

interface RunningNode {
  readonly child: ChildProcess;
  readonly apiUrl: string;
  readonly token: string | null;
}

export const fleet: Scenario = {
  name: 'fleet',
  description: `${DEVICES} simulated devices (claim-provisioned, mTLS) at 1 msg / 10 s for ${SECONDS} s against one node; restart reconnection; idle agent RSS`,
  async run() {
    const home = await mkdtemp(join(tmpdir(), 'fw-bench-fleet-'));
    const mqttPort = await freePort();
    // All simulated devices come from 127.0.0.1: the per-source handshake limit is for the many addresses of a real fleet.
    const env = { ...MEASURED_ENV, FLEETWARD_HOME: home, FLEETWARD_API_PORT: '0', FLEETWARD_MQTT_PORT: String(mqttPort), FLEETWARD_LOG_LEVEL: 'warn', FLEETWARD_LIMITS_HANDSHAKES_PER_MINUTE_PER_SOURCE: '6000000', FLEETWARD_LIMITS_HANDSHAKE_BURST_PER_SOURCE: '1000000', FLEETWARD_LIMITS_HANDSHAKES_PER_SECOND: String(HANDSHAKES_PER_SECOND) };
    let node = await serve(env);
    const caPem = await readFile(join(home, 'ca.pem'), 'utf8');
    const token = node.token ?? '';
    const api = new NodeApi({ apiUrl: node.apiUrl, token, caPem });
    const mqttUrl = `mqtts://127.0.0.1:${mqttPort}`;
    const sim = await SimulatedFleet.create(api, { caPem, mqttUrl }, parseSimOptions(['--devices', String(DEVICES), '--duration', String(SECONDS), '--rate', '0.1', '--concurrency', '200']));
    const rows: Row[] = [];
    const raw: Record<string, unknown> = { devices: DEVICES, requestedDevices: REQUESTED_DEVICES, openFileLimit: FD_LIMIT, seconds: SECONDS, simulatorPreload: SIMULATOR_PRELOAD ?? null };
    if (DEVICES < REQUESTED_DEVICES) progress(`  ${REQUESTED_DEVICES} devices need more than the open-file limit of ${FD_LIMIT} allows: running ${DEVICES}`);
    try {
      const started = Date.now();
      const ticker = setInterval(() => progress(`  ${JSON.stringify(sim.progress())}`), 10_000);
      await sim.start(10);
      // Every device has started (or given up after its retries): wait for the provisioned ones to be online.
      const provisioned = sim.progress().provisioned;
      while (sim.online() < provisioned && Date.now() - started < 600_000) await sleep(100);
      clearInterval(ticker);
      const connectSeconds = (Date.now() - started) / 1000;
      rows.push(row(`fleet of ${DEVICES}: provision by claim + connect`, 's', [connectSeconds], null, `${sim.online()} online, ${DEVICES - provisioned} gave up provisioning: ${sim.summary().firstErrors.join('; ') || 'none'}`));

      sim.takeLatencies();
      const cpuBefore = brokerCpuSeconds(node.child.pid as number);
      const runStarted = Date.now();
      await sim.run(SECONDS);
      const cpuShare = (brokerCpuSeconds(node.child.pid as number) - cpuBefore) / ((Date.now() - runStarted) / 1000);
      const latencies = sim.takeLatencies().sort((a, b) => a - b);
      const summary = sim.summary();
      raw.summary = summary;
      rows.push(row('server CPU under load (share of one core)', '%', [cpuShare * 100]));
      rows.push(row('server RSS under load', 'MiB', [rssKib(node.child.pid as number) / 1024]));
      rows.push(latencies.length > 0 ? row(`p99 publish-to-subscriber latency (${latencies.length} deliveries)`, 'ms', [percentile(latencies, 0.99)], null, `p50 ${percentile(latencies, 0.5)} ms`) : missingRow('p99 publish-to-subscriber latency', 'ms', null, 'no deliveries timed'));
      rows.push(row('messages acknowledged / published', '%', [(100 * summary.acknowledged) / Math.max(1, summary.published)], { atLeast: 100 }));

      // Restarts: every device must come back, paced by the node's handshake limit (backoff makes each storm different: several, median).
      const reconnectSeconds: number[] = [];
      const notes: string[] = [];
      for (let restart = 1; restart <= RESTARTS; restart++) {
        const resumedBefore = resumedHandshakes(sim);
        node.child.kill('SIGTERM');
        await new Promise((r) => node.child.once('exit', r));
        await sleep(1_000);
        node = await serve(env);
        const restarted = Date.now();
        while (sim.online() < provisioned && Date.now() - restarted < 120_000) await sleep(100);
        reconnectSeconds.push((Date.now() - restarted) / 1000);
        notes.push(`${sim.online()} online, ${resumedHandshakes(sim) - resumedBefore} resumed`);
        progress(`  restart ${restart}/${RESTARTS}: ${notes.at(-1)} after ${reconnectSeconds.at(-1)} s`);
      }
      rows.push(row(`the fleet reconnected after a server restart`, 's', reconnectSeconds, { below: 60 }, `of ${provisioned}: ${notes.join('; ')}; handshake limit ${HANDSHAKES_PER_SECOND}/s`));

      rows.push(...(await idleAgentRss(caPem, mqttUrl, new NodeApi({ apiUrl: node.apiUrl, token, caPem }))));
    } finally {
      await sim.stop();
      node.child.kill('SIGTERM');
      await new Promise((r) => node.child.once('exit', r));
      await rm(home, { recursive: true, force: true });
    }
    return { rows, raw };
  },
};

/** One `fleetward-agent` process, provisioned by claim, idle for 10 s after it connected: its VmRSS. */
async function idleAgentRss(caPem: string, mqttUrl: string, api: NodeApi): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'fw-bench-agent-'));
  try {
    const template = `bench-agent-${Date.now()}`;
    await api.call('POST', '/api/v1/templates', { name: template, namePattern: 'idle-agent' });
    const { generateDeviceKey, keyPem } = await import('../../packages/agent/src/identity/key-file.js');
    const { certificateRequestPem } = await import('../../packages/agent/src/identity/certificate-request.js');
    const { softwareDeviceKey } = await import('../../packages/agent/src/identity/device-key.js');
    const claimKey = generateDeviceKey();
    const claim = await api.call<{ certificatePem: string }>('POST', `/api/v1/templates/${template}/claim-certificates`, { csr: await certificateRequestPem(template, softwareDeviceKey(claimKey)) });
    await writeFile(join(dir, 'ca.pem'), caPem);
    await writeFile(join(dir, 'claim.pem'), claim.certificatePem);
    await writeFile(join(dir, 'claim.key'), keyPem(claimKey), { mode: 0o600 });
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ thing: 'idle-agent', mqttUrl, caFile: 'ca.pem', stateDir: 'state', provisioning: { method: 'claim-certificate', template, claimCertFile: 'claim.pem', claimKeyFile: 'claim.key' } }));
    await chmod(dir, 0o700);
    // First start provisions (loading the X.509 library); the device as it runs every day is the restarted one.
    for (const pass of ['provision', 'idle'] as const) {
      const child = spawn(process.execPath, [AGENT, '--config', join(dir, 'agent.json')], { env: MEASURED_ENV, stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`fleetward-agent exited with ${code}`)));
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
          if (line.includes('"type":"online"')) resolve();
        });
      });
      if (pass === 'idle') await sleep(10_000);
      const rss = rssKib(child.pid as number) / 1024;
      const own = privateKib(child.pid as number) / 1024;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      if (pass === 'idle') {
        // The floor: an idle Node.js 20 process that loads nothing, on the same machine in the same run.
        const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: MEASURED_ENV, stdio: 'ignore' });
        await sleep(3_000);
        const floor = rssKib(bare.pid as number) / 1024;
        bare.kill('SIGTERM');
        return [
          row('one fleetward-agent process, idle: RSS', 'MiB', [rss], { below: 40 }, `bare Node.js idle RSS ${floor.toFixed(1)} MiB`),
          row('one fleetward-agent process, idle: private memory (USS)', 'MiB', [own]),
        ];
      }
    }
    return [missingRow('one fleetward-agent process, idle', 'MiB', { below: 40 }, 'not measured')];
  } catch (error) {
    return [missingRow('one fleetward-agent process, idle', 'MiB', { below: 40 }, (error as Error).message)];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function serve(env: NodeJS.ProcessEnv): Promise<RunningNode> {
  const child = spawn(process.execPath, [CLI, 'serve', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`fleetward serve exited with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const event = JSON.parse(line) as { event?: string; apiUrl: string; bootstrapToken: { token: string } | null };
      if (event.event === 'ready') resolve({ child, apiUrl: event.apiUrl, token: event.bootstrapToken?.token ?? null });
    });
  });
}

/** TLS handshakes the fleet's sessions resumed with a ticket, so far. */
function resumedHandshakes(sim: SimulatedFleet): number {
  return sim.devices.reduce((n, d) => n + (d.agent?.status().session.resumed ?? 0), 0);
}

/** Memory only this process holds (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup), in KiB. */
function privateKib(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return [...text.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB$/gm)].reduce((total, m) => total + Number(m[1]), 0);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}
