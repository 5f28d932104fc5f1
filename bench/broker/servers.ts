import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { BenchCertificates } from './certificates.js';

/** The three brokers compared, each in its own process on a free loopback port. */
export type ServerName = 'engine' | 'floor' | 'mosquitto';

export const serverLabels: Readonly<Record<ServerName, string>> = {
  engine: 'Fleetward engine',
  floor: 'Node TLS floor',
  mosquitto: 'Mosquitto',
};

export interface RunningServer {
  readonly name: ServerName;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The conformance runner as built by buildEngine() (or `npm run build`): the bare engine with allow-all hooks. */
const ENGINE = join(ROOT, 'packages/broker/dist/conformance/main.js');
const FLOOR = join(ROOT, 'bench/broker/tls-floor.js');
const MOSQUITTO = '/usr/sbin/mosquitto';
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const ENGINE_PROJECTS = ['packages/protocol/tsconfig.build.json', 'packages/broker/tsconfig.build.json'];

/**
 * Compiles the engine (and the protocol package it imports) from the current sources, so that the
 * engine measured is never a stale build: `npm run bench` builds everything first, but this
 * scenario also runs alone (`node --import tsx bench/run.ts broker`) while another package does
 * not compile. Incremental: a few seconds when nothing changed.
 */
export async function buildEngine(): Promise<void> {
  const child = spawn(process.execPath, [TSC, '-b', ...ENGINE_PROJECTS], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`building the broker engine failed:\n${output}`);
}

export async function startServer(name: ServerName, certs: BenchCertificates, dir: string): Promise<RunningServer> {
  switch (name) {
    case 'engine':
      await access(ENGINE).catch(() => {
        throw new Error(`${ENGINE} is missing: run \`npm run build\` first (npm run bench does)`);
      });
      return startNode(name, [ENGINE, '--port', '0', '--tls-ca', certs.ca, '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey], /^mqtts:\/\/127\.0\.0\.1:(\d+)$/m);
    case 'floor':
      return startNode(name, [FLOOR, certs.ca, certs.serverCert, certs.serverKey], /^listening (\d+)$/m);
    case 'mosquitto':
      return startMosquitto(certs, dir);
  }
}

/** Node with no flags of ours, so that the engine and the floor run alike. */
async function startNode(name: ServerName, args: readonly string[], ready: RegExp): Promise<RunningServer> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${output}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before listening: ${output}`));
    });
  });
  return { name, pid: child.pid as number, port, stop: () => stop(child) };
}

/** A throwaway Mosquitto (never the system one): mutual TLS, client certificate required, TCP_NODELAY. */
async function startMosquitto(certs: BenchCertificates, dir: string): Promise<RunningServer> {
  const port = await freePort();
  const conf = join(dir, `mosquitto-${port}.conf`);
  await writeFile(
    conf,
    [
      'per_listener_settings false',
      // The certificate is the authentication, as with the engine's allow-all hooks.
      'allow_anonymous true',
      'persistence false',
      'set_tcp_nodelay true',
      // No limit on QoS 1 messages in flight to a subscriber: with the default (20), or 64 as the
      // engine has, Mosquitto 2.0.11 here stops delivering to the benchmark's QoS 1 observer after a
      // few thousand messages and sits idle with messages pending (measured: the load then stalls).
      'max_inflight_messages 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      `listener ${port} 127.0.0.1`,
      `cafile ${certs.ca}`,
      `certfile ${certs.serverCert}`,
      `keyfile ${certs.serverKey}`,
      'require_certificate true',
      'tls_version tlsv1.2',
      '',
    ].join('\n'),
  );
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop(child);
      throw new Error(`mosquitto did not start: ${output}`);
    }
    await sleep(50);
  }
  return { name: 'mosquitto', pid: child.pid as number, port, stop: () => stop(child) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
