import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { brokerCpuSeconds } from '../gateway/proc-stat.js';
import { progress } from '../lib/report.js';
import { freePort, memoryKib, serve } from './serve.js';
import { THING_TYPE, type UpdateHome } from './update-home.js';

const JOB_DEVICES = fileURLToPath(new URL('./job-devices.ts', import.meta.url));
/** Devices per device process: each holds one descriptor per device, far under the open-file limit. */
const DEVICES_PER_PROCESS = 2_500;
export const PHASES = ['1%', '10%', '50%', '100%'] as const;
const POLL_MS = 500;
const ROLLOUT_TIMEOUT_MS = 30 * 60_000;
const FINAL = ['succeeded', 'failed', 'rejected', 'timed-out', 'cancelled'] as const;

/** Node-wide and per-source handshake limits raised: every simulated device connects from 127.0.0.1 (as in the fleet scenario). */
const LIMITS = {
  FLEETWARD_LIMITS_HANDSHAKES_PER_MINUTE_PER_SOURCE: '6000000',
  FLEETWARD_LIMITS_HANDSHAKE_BURST_PER_SOURCE: '1000000',
  FLEETWARD_LIMITS_HANDSHAKES_PER_SECOND: '1000',
  FLEETWARD_LIMITS_HANDSHAKE_BURST: '1000',
};

interface Counts {
  readonly total: number;
  readonly notReleased: number;
  readonly [state: string]: number;
}

interface DeploymentView {
  readonly id: string;
  readonly state: string;
  readonly reason: string | null;
  readonly counts: Counts;
  readonly phases: readonly { readonly phase: number; readonly size: number; readonly counts: Counts }[];
  readonly createdAt: string;
}

export interface PhaseTiming {
  readonly phase: number;
  readonly size: number;
  /** Seconds after the deployment's creation (the server's own timestamps of its jobs): first release, last job final. */
  readonly releasedAt: number;
  readonly finishedAt: number;
  /** A job's release to its final report, p50 and p99, in seconds. */
  readonly jobP50: number;
  readonly jobP99: number;
}

interface JobView {
  readonly thing: string;
  readonly phase: number;
  readonly releasedAt: string | null;
  readonly finishedAt: string | null;
}

export interface RolloutResult {
  readonly devices: number;
  readonly processes: number;
  readonly connectSeconds: number;
  readonly connected: number;
  readonly connectFailures: number;
  /** Server CPU (utime+stime) while the fleet connected, and during the rollout, in seconds. */
  readonly connectCpuSeconds: number;
  readonly rolloutCpuSeconds: number;
  readonly rolloutSeconds: number;
  readonly state: string;
  readonly reason: string | null;
  readonly counts: Counts;
  readonly phases: readonly PhaseTiming[];
  /** KiB: before the devices connected, idle with every device connected, highest seen during the rollout, and VmHWM at the end. */
  readonly memory: { readonly idle: number; readonly connected: number; readonly rolloutMax: number; readonly peak: number };
  readonly deviceStats: readonly Record<string, unknown>[];
}

/** A device process answering `{ id, cmd }` requests over IPC. */
class DeviceProcess {
  readonly child: ChildProcess;
  #next = 0;
  readonly #waiting = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;

  constructor(args: readonly string[]) {
    this.child = fork(JOB_DEVICES, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`a device process exited with ${code}`)));
      this.child.on('message', (message: Record<string, unknown>) => {
        if (message.ready === true) return resolve();
        const waiter = this.#waiting.get(message.id as number);
        if (waiter === undefined) return;
        this.#waiting.delete(message.id as number);
        if (typeof message.error === 'string') waiter.reject(new Error(message.error));
        else waiter.resolve(message);
      });
    });
  }

  request(cmd: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = (this.#next += 1);
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.child.send({ id, cmd, ...extra });
    });
  }
}

/** An operator's API call with the admin token, over HTTPS trusting the node's CA. */
function api<T>(apiUrl: string, ca: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(`${apiUrl}${path}`, { method, ca, headers: { authorization: `Bearer ${token}`, ...(data && { 'content-type': 'application/json', 'content-length': data.length }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text) as T);
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * The rollout part: `fleetward serve` in its own process (rollout tick every second), `devices`
 * MQTT 5 devices over mTLS in child processes of at most 2,500 each, then a deployment of the
 * rollout artifact to every thing of the type in four phases, created over the API and followed
 * by polling it until it completes; the server's CPU and memory are read from /proc.
 */
export async function measureRollout(home: UpdateHome, devices: number, sampleEvery: number): Promise<RolloutResult> {
  const mqttPort = await freePort();
  const node = await serve({ ...home.env, ...LIMITS, FLEETWARD_MQTT_PORT: String(mqttPort), FLEETWARD_UPDATES_ROLLOUT_INTERVAL_SECONDS: '1' });
  const caFile = join(home.dir, 'ca.pem');
  const rootFile = join(home.dir, 'root.json');
  await writeFile(caFile, home.chainPem);
  await writeFile(rootFile, home.rootJson);
  const processes: DeviceProcess[] = [];
  try {
    for (let from = 0; from < devices; from += DEVICES_PER_PROCESS) {
      processes.push(new DeviceProcess([home.devicesFile, caFile, rootFile, String(from), String(Math.min(DEVICES_PER_PROCESS, devices - from)), String(sampleEvery)]));
    }
    await Promise.all(processes.map((p) => p.ready));
    await sleep(2_000);
    const idle = memoryKib(node.pid).rss;

    const connectCpu0 = brokerCpuSeconds(node.pid);
    const connectStarted = Date.now();
    const ticker = setInterval(() => progress(`  connecting… server RSS ${(memoryKib(node.pid).rss / 1024).toFixed(0)} MiB`), 10_000);
    const connects = await Promise.all(processes.map((p) => p.request('connect', { url: `mqtts://127.0.0.1:${mqttPort}` })));
    clearInterval(ticker);
    const connectSeconds = (Date.now() - connectStarted) / 1000;
    const connectCpuSeconds = brokerCpuSeconds(node.pid) - connectCpu0;
    const connected = connects.reduce((n, c) => n + (c.connected as number), 0);
    const connectFailures = connects.reduce((n, c) => n + (c.failed as number), 0);
    progress(`  ${connected} of ${devices} devices connected in ${connectSeconds.toFixed(1)} s (${connectFailures} failed${connectFailures > 0 ? `: ${connects.flatMap((c) => c.errors as string[]).slice(0, 3).join('; ')}` : ''})`);
    await sleep(3_000);
    const connectedRss = memoryKib(node.pid).rss;

    const cpu0 = brokerCpuSeconds(node.pid);
    const started = Date.now();
    let deployment = await api<DeploymentView>(node.apiUrl, home.chainPem, home.token, 'POST', '/api/v1/deployments', { target: home.rollout.target, selection: { query: { thingType: THING_TYPE } }, phases: [...PHASES] });
    progress(`  deployment ${deployment.id} created: ${deployment.counts.total} jobs in ${deployment.phases.length} phases (${deployment.phases.map((p) => p.size).join(', ')})`);
    let rolloutMax = 0;
    let lastLog = 0;
    while (Date.now() - started < ROLLOUT_TIMEOUT_MS) {
      const now = (Date.now() - started) / 1000;
      rolloutMax = Math.max(rolloutMax, memoryKib(node.pid).rss);
      if (deployment.state !== 'running') break;
      if (now - lastLog >= 10) {
        lastLog = now;
        const open = deployment.phases.find((p) => FINAL.reduce((n, s) => n + (p.counts[s] ?? 0), 0) < p.size);
        progress(`  ${now.toFixed(0)} s: ${deployment.state}, phase ${open === undefined ? '-' : open.phase + 1}, succeeded ${deployment.counts.succeeded} of ${deployment.counts.total}`);
      }
      await sleep(POLL_MS);
      deployment = await api<DeploymentView>(node.apiUrl, home.chainPem, home.token, 'GET', `/api/v1/deployments/${deployment.id}`);
    }
    const rolloutSeconds = (Date.now() - started) / 1000;
    const rolloutCpuSeconds = brokerCpuSeconds(node.pid) - cpu0;
    const peak = memoryKib(node.pid).peak;
    const deviceStats = await Promise.all(processes.map((p) => p.request('stats')));
    // Phase timings from the server's own job timestamps, read once the rollout is over (not while it is measured).
    const jobs: JobView[] = [];
    for (let after: string | null = null; ; ) {
      const page: { jobs: JobView[]; next: string | null } = await api(node.apiUrl, home.chainPem, home.token, 'GET', `/api/v1/deployments/${deployment.id}/jobs?limit=500${after === null ? '' : `&after=${after}`}`);
      jobs.push(...page.jobs);
      if (page.next === null) break;
      after = page.next;
    }
    const created = Date.parse(deployment.createdAt);
    const phases = deployment.phases.map((p): PhaseTiming => {
      const own = jobs.filter((j) => j.phase === p.phase && j.releasedAt !== null);
      const seconds = (iso: string | null) => (iso === null ? NaN : (Date.parse(iso) - created) / 1000);
      const durations = own.map((j) => seconds(j.finishedAt) - seconds(j.releasedAt)).sort((a, b) => a - b);
      return {
        phase: p.phase,
        size: p.size,
        releasedAt: Math.min(...own.map((j) => seconds(j.releasedAt))),
        finishedAt: Math.max(...own.map((j) => seconds(j.finishedAt))),
        jobP50: durations[Math.floor(durations.length * 0.5)] ?? NaN,
        jobP99: durations[Math.min(durations.length - 1, Math.floor(durations.length * 0.99))] ?? NaN,
      };
    });
    return {
      devices,
      processes: processes.length,
      connectSeconds,
      connected,
      connectFailures,
      connectCpuSeconds,
      rolloutCpuSeconds,
      rolloutSeconds,
      state: deployment.state,
      reason: deployment.reason,
      counts: deployment.counts,
      phases,
      memory: { idle, connected: connectedRss, rolloutMax, peak },
      deviceStats: deviceStats.map(({ id: _id, ...rest }) => rest),
    };
  } finally {
    await Promise.all(processes.map((p) => Promise.race([p.request('close').catch(() => undefined), sleep(20_000)])));
    for (const p of processes) p.child.kill('SIGTERM');
    await node.stop();
  }
}
