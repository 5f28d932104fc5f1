import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { LoadRequest } from './device-load.js';

const GATEWAY_NODE = fileURLToPath(new URL('./gateway-node.ts', import.meta.url));
/**
 * The node's tsx reads this tsconfig, which maps no `@fleetward/*` package to its sources (the root
 * one does, for tests): the node runs every package built, as `fleetward serve` does.
 */
const BUILT_PACKAGES_TSCONFIG = fileURLToPath(new URL('../../tsconfig.base.json', import.meta.url));
const DEVICE_LOAD = fileURLToPath(new URL('./device-load.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;

/** A child process answering `{ id, ... }` requests over IPC with `{ id, ... }`. */
class Child {
  readonly process: ChildProcess;
  #next = 0;
  readonly #waiting = new Map<number, { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void }>();
  #output = '';

  constructor(script: string, args: readonly string[], env: NodeJS.ProcessEnv) {
    this.process = fork(script, args, { execArgv: ['--import', 'tsx', ...(process.env.BENCH_PROF_DIR && script.includes('gateway-node') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF_DIR}`] : [])], env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.process.stderr?.on('data', (chunk: Buffer) => (this.#output = (this.#output + chunk.toString()).slice(-4000)));
    this.process.on('message', (message: Record<string, unknown>) => {
      const waiter = typeof message.id === 'number' ? this.#waiting.get(message.id) : undefined;
      if (waiter === undefined) return;
      this.#waiting.delete(message.id as number);
      if (typeof message.error === 'string') waiter.reject(new Error(message.error));
      else waiter.resolve(message);
    });
    this.process.once('exit', (code) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`${script} exited (${code}): ${this.#output}`));
      this.#waiting.clear();
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  /** Waits for the child's `{ ready: true, ... }`. */
  async ready(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`did not start in time: ${this.#output}`)), START_TIMEOUT_MS);
      this.process.on('message', (message: Record<string, unknown>) => {
        if (message.ready !== true) return;
        clearTimeout(timer);
        resolve(message);
      });
      this.process.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exited (${code}) before it was ready: ${this.#output}`));
      });
    });
  }

  request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = (this.#next += 1);
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.process.send({ id, ...message });
    });
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = once(this.process, 'exit');
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}

/** A Fleetward node serving a provisioned data folder, in its own process (bench/gateway/gateway-node.ts). */
export interface RunningGateway {
  readonly name: 'gateway';
  readonly pid: number;
  readonly port: number;
  /** Revokes a certificate in the node; resolves with the hrtime (ns) just before revoke() was called. */
  revoke(serial: string): Promise<bigint>;
  /** Closes the node gracefully (a restart), then ends its process. */
  stop(): Promise<void>;
}

export async function startGateway(env: Readonly<Record<string, string>>): Promise<RunningGateway> {
  // Only the data folder's FLEETWARD_* variables: the node refuses unknown ones, and the caller's must not leak in.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FLEETWARD_')));
  const child = new Child(GATEWAY_NODE, [], { ...inherited, TSX_TSCONFIG_PATH: BUILT_PACKAGES_TSCONFIG, ...env });
  let port: number;
  try {
    port = Number((await child.ready()).port);
  } catch (error) {
    await child.kill();
    throw new Error(`the Fleetward node did not start: ${(error as Error).message}`);
  }
  return {
    name: 'gateway',
    pid: child.pid,
    port,
    revoke: async (serial) => BigInt((await child.request({ revoke: serial })).startedNs as string),
    async stop() {
      await Promise.race([child.request({ close: true }), once(child.process, 'exit')]).catch(() => undefined);
      await child.kill();
    },
  };
}

/** The device load generator (bench/gateway/device-load.ts) in its own process. */
export interface DeviceLoad {
  run<T = Record<string, unknown>>(request: LoadRequest): Promise<T>;
  stop(): Promise<void>;
}

export async function startDeviceLoad(devicesFile: string, caFile: string): Promise<DeviceLoad> {
  const child = new Child(DEVICE_LOAD, [devicesFile, caFile], { ...process.env, NODE_OPTIONS: '--max-old-space-size=4096' });
  await child.ready();
  return {
    run: async <T>(request: LoadRequest) => (await child.request({ request })).result as T,
    stop: () => child.kill(),
  };
}
