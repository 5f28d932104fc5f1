import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../packages/server/bin/fleetward.js', import.meta.url));
const START_TIMEOUT_MS = 60_000;

/** `fleetward serve` in its own process, as an operator runs it. */
export interface ServedNode {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly apiUrl: string;
  stop(): Promise<void>;
}

/** Starts `fleetward serve --json` on a provisioned data folder; resolves once it printed its ready line. */
export function serve(env: Readonly<Record<string, string>>): Promise<ServedNode> {
  // Only the data folder's FLEETWARD_* variables: nothing from the shell that runs the benchmark.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FLEETWARD_')));
  const child = spawn(process.execPath, [CLI, 'serve', '--json'], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error('fleetward serve did not get ready in time'));
    }, START_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fleetward serve exited with ${code}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let event: { event?: string; apiUrl?: string };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        return;
      }
      if (event.event !== 'ready' || event.apiUrl === undefined) return;
      clearTimeout(timer);
      resolve({ child, pid: child.pid as number, apiUrl: event.apiUrl, stop });
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Current and peak resident set size of a process, in KiB (/proc/<pid>/status VmRSS and VmHWM). */
export function memoryKib(pid: number): { readonly rss: number; readonly peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}
