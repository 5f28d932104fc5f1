import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { missingRow, progress, row, type Row, type Scenario } from '../lib/report.js';

const CLI = fileURLToPath(new URL('../../packages/server/bin/fleetward.js', import.meta.url));
const RUNS = 5;
const POLL_INTERVAL_MS = 10;
const IDLE_MS = 3000;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const READYZ_TARGET_MS = 1500;
const RSS_TARGET_MB = 120;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface StartRun {
  /** Spawn to the `{"event":"ready"}` line on stdout. */
  readonly readyLineMs: number;
  /** Spawn to the first GET /readyz answered with 200. */
  readonly readyzMs: number;
  readonly idleRssMb: number;
  /** Null when the process had not exited STOP_TIMEOUT_MS after SIGTERM (it is then killed). */
  readonly stop: (Exit & { readonly ms: number }) | null;
}

interface Ready {
  readonly apiUrl: string;
  readonly caFile: string;
}

export const startup: Scenario = {
  name: 'startup',
  description: 'built CLI `serve --json` on SQLite: spawn to /readyz 200, idle RSS, SIGTERM exit',
  async run() {
    const first: StartRun[] = [];
    const restart: StartRun[] = [];
    for (let i = 1; i <= RUNS; i += 1) {
      const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-'));
      try {
        // A folder that does not exist yet: the first start creates it like a new installation.
        const home = join(dir, 'home');
        first.push(await startOnce(home));
        progress(`run ${i}/${RUNS} first start: ${describe(first.at(-1))}`);
        restart.push(await startOnce(home));
        progress(`run ${i}/${RUNS} restart:     ${describe(restart.at(-1))}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    return { rows: [...variantRows('first start', first), ...variantRows('restart', restart)], raw: { runs: RUNS, first, restart } };
  },
};

function variantRows(variant: string, runs: readonly StartRun[]): Row[] {
  const clean = runs.filter((r) => r.stop !== null && r.stop.code === 0);
  const stopped = runs.flatMap((r) => (r.stop === null ? [] : [r.stop.ms]));
  const stopMetric = `${variant}: SIGTERM to exit`;
  const stopNote = `${clean.length}/${runs.length} exited with code 0 within ${STOP_TIMEOUT_MS / 1000} s`;
  return [
    row(`${variant}: spawn to /readyz 200`, 'ms', runs.map((r) => r.readyzMs), { below: READYZ_TARGET_MS }),
    row(`${variant}: spawn to ready line`, 'ms', runs.map((r) => r.readyLineMs)),
    row(`${variant}: idle RSS 3 s after ready`, 'MB', runs.map((r) => r.idleRssMb), { below: RSS_TARGET_MB }),
    stopped.length === 0
      ? missingRow(stopMetric, 'ms', { below: STOP_TIMEOUT_MS }, stopNote)
      : { ...row(stopMetric, 'ms', stopped, { below: STOP_TIMEOUT_MS }, stopNote), ...(clean.length < runs.length && { verdict: 'FAIL' as const }) },
  ];
}

function describe(run: StartRun | undefined): string {
  if (!run) return '?';
  const stop = run.stop === null ? 'no exit after SIGTERM' : `exit ${run.stop.code ?? run.stop.signal} after ${run.stop.ms.toFixed(0)} ms`;
  return `/readyz ${run.readyzMs.toFixed(0)} ms, ready line ${run.readyLineMs.toFixed(0)} ms, RSS ${run.idleRssMb.toFixed(1)} MB, ${stop}`;
}

async function startOnce(home: string): Promise<StartRun> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'serve', '--json'], { env: nodeEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  try {
    const failed = exited.then((exit): never => {
      throw new Error(`fleetward serve exited early (${exit.code ?? exit.signal}):\n${stderr}`);
    });
    failed.catch(() => undefined); // only an error while we wait on it; a later exit is expected
    const deadline = started + START_TIMEOUT_MS;
    const ready = await Promise.race([readyLine(child.stdout), failed, timeout(START_TIMEOUT_MS, 'no ready line')]);
    const readyLineMs = performance.now() - started;
    const ca = await readFile(ready.caFile);
    await Promise.race([pollReadyz(`${ready.apiUrl}/readyz`, ca, deadline), failed]);
    const readyzMs = performance.now() - started;
    await Promise.race([sleep(IDLE_MS), failed]);
    const idleRssMb = await vmRssMb(child.pid as number);
    const stopAt = performance.now();
    child.kill('SIGTERM');
    const exit = await Promise.race([exited, sleep(STOP_TIMEOUT_MS, null)]);
    return { readyLineMs, readyzMs, idleRssMb, stop: exit === null ? null : { ...exit, ms: performance.now() - stopAt } };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

/** The parent's environment without any FLEETWARD_* variable (unknown ones are refused), plus ours. */
function nodeEnv(home: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FLEETWARD_')));
  return { ...env, FLEETWARD_HOME: home, FLEETWARD_API_PORT: '0', FLEETWARD_MQTT_PORT: '0' };
}

/** Resolves with the `{"event":"ready"}` line; the other lines (pino logs) keep being read and dropped. */
function readyLine(stdout: Readable): Promise<Ready> {
  return new Promise((resolve) => {
    createInterface({ input: stdout }).on('line', (line) => {
      const ready = parseReady(line);
      if (ready) resolve(ready);
    });
  });
}

function parseReady(line: string): Ready | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { event, apiUrl, caFile } = value as Record<string, unknown>;
  return event === 'ready' && typeof apiUrl === 'string' && typeof caFile === 'string' ? { apiUrl, caFile } : null;
}

async function pollReadyz(url: string, ca: Buffer, deadline: number): Promise<void> {
  let last = 'no answer';
  while (performance.now() < deadline) {
    const status = await statusOf(url, ca).catch((error: unknown) => (error instanceof Error ? error.message : String(error)));
    if (status === 200) return;
    last = String(status);
    await sleep(POLL_INTERVAL_MS);
  }
  throw new Error(`GET ${url} did not answer 200 in time (last: ${last})`);
}

function statusOf(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = get(url, { ca, agent: false, timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy(new Error('request timed out')));
    request.on('error', reject);
  });
}

async function vmRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) / 1024;
}

async function timeout(ms: number, what: string): Promise<never> {
  await sleep(ms, undefined, { ref: false });
  throw new Error(`${what} after ${ms} ms`);
}
