import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchCertificates } from './certificates.js';
import type { RunningServer } from './servers.js';

const run = promisify(execFile);
const BUILD_SCRIPT = fileURLToPath(new URL('./build.sh', import.meta.url));
const RUN_TIMEOUT_MS = 300_000;

export type LoadgenMode = 'connect' | 'idle' | 'pubsub' | 'fanout';

/** What every mode reports; the mode's own figures are in `figures`. */
export interface LoadgenReport {
  /** Wall seconds of the measured window. */
  readonly seconds: number;
  /** The broker's CPU (utime + stime of all its threads) over the window, and the system part of it. */
  readonly brokerCpuSeconds: number;
  readonly brokerSystemCpuSeconds: number;
  readonly loadgenCpuSeconds: number;
  /** The load generator's CPU over the window as a share of one core (0–1). */
  readonly loadgenCpuShare: number;
  readonly errors: number;
  readonly figures: Readonly<Record<string, number>>;
  readonly lastError?: string;
}

/** Compiles the load generator (installing gcc and libssl-dev first if they are missing); returns its path. */
export async function buildLoadgen(): Promise<string> {
  const { stdout } = await run('sh', [BUILD_SCRIPT], { maxBuffer: 16 * 1024 * 1024 });
  const path = stdout.trim().split('\n').at(-1);
  if (path === undefined || path === '') throw new Error('bench/broker/build.sh printed no path');
  return path;
}

/** Runs one measurement against one broker; `options` are the load generator's `--name value` options. */
export async function runLoadgen(
  binary: string,
  mode: LoadgenMode,
  server: RunningServer,
  certs: BenchCertificates,
  options: Readonly<Record<string, number | boolean>> = {},
): Promise<LoadgenReport> {
  const args = [mode, '--port', String(server.port), '--pid', String(server.pid), '--ca', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey];
  for (const [name, value] of Object.entries(options)) {
    if (value === false) continue;
    args.push(`--${name}`);
    if (value !== true) args.push(String(value));
  }
  let stdout: string;
  try {
    ({ stdout } = await run(binary, args, { timeout: RUN_TIMEOUT_MS, maxBuffer: 1024 * 1024 }));
  } catch (error) {
    const failed = error as { stderr?: string; message: string };
    throw new Error(`loadgen ${mode} against ${server.name} failed: ${failed.stderr?.trim() || failed.message}`);
  }
  return parseReport(stdout);
}

function parseReport(stdout: string): LoadgenReport {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const value: unknown = JSON.parse(line);
  if (typeof value !== 'object' || value === null) throw new Error(`loadgen printed no report: ${stdout}`);
  const record = value as Record<string, unknown>;
  const figures: Record<string, number> = {};
  for (const [name, field] of Object.entries(record)) if (typeof field === 'number') figures[name] = field;
  const number = (name: string): number => {
    const field = figures[name];
    if (field === undefined) throw new Error(`loadgen report has no ${name}: ${line}`);
    return field;
  };
  return {
    seconds: number('seconds'),
    brokerCpuSeconds: number('brokerCpuSeconds'),
    brokerSystemCpuSeconds: number('brokerSystemCpuSeconds'),
    loadgenCpuSeconds: number('loadgenCpuSeconds'),
    loadgenCpuShare: number('loadgenCpuShare'),
    errors: number('errors'),
    figures,
    ...(typeof record.lastError === 'string' && { lastError: record.lastError }),
  };
}

/** A figure of a report that must be there. */
export function figure(report: LoadgenReport, name: string): number {
  const value = report.figures[name];
  if (value === undefined) throw new Error(`loadgen report has no ${name}`);
  return value;
}
