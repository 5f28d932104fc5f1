import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { MtlsFetcher } from '../../packages/agent/src/updates/mtls-fetcher.js';
import { makeCertificates } from '../broker/certificates.js';
import { brokerCpuSeconds } from '../gateway/proc-stat.js';
import { progress } from '../lib/report.js';
import { serve } from './serve.js';
import type { UpdateHome } from './update-home.js';

const PLAIN_SERVER = fileURLToPath(new URL('./plain-https-server.ts', import.meta.url));
/** MB as in the target: 1,000,000 bytes. */
const MB = 1_000_000;

interface ClientTls {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

export interface DownloadRun {
  readonly bytes: number;
  readonly seconds: number;
  readonly mbPerSecond: number;
}

export interface DownloadResult {
  readonly fleetward: readonly DownloadRun[];
  readonly plain: readonly DownloadRun[];
  readonly fetcher: readonly DownloadRun[];
  /** The TLS version and suite negotiated with each server. */
  readonly tls: { readonly fleetward: string; readonly plain: string };
  /** Server CPU seconds (utime+stime, /proc/<pid>/stat) per downloaded MB, for each server. */
  readonly cpuPerMb: { readonly fleetward: number; readonly plain: number };
}

/**
 * One GET over mutual TLS with a fresh connection (no keep-alive agent), the body counted and
 * dropped: wall time from the request to the last byte, handshake included.
 */
function timedGet(url: string, tls: ClientTls, expected: number): Promise<DownloadRun & { readonly negotiated: string; readonly status: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request(url, { agent: false, key: tls.key, cert: tls.cert, ca: tls.ca, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (res) => {
      const socket = res.socket as TLSSocket;
      const negotiated = `${socket.getProtocol() ?? '?'} ${socket.getCipher().standardName}`;
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('error', reject);
      res.on('end', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (res.statusCode !== 200 || bytes !== expected) reject(new Error(`GET ${url}: ${res.statusCode}, ${bytes} of ${expected} bytes`));
        else resolve({ bytes, seconds, mbPerSecond: bytes / MB / seconds, negotiated, status: res.statusCode });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The same download through the agent's fetcher (packages/agent/src/updates/mtls-fetcher.ts), as tuf-js drives it: to a partial file, then tuf-js's temporary file. */
async function fetcherGet(url: string, tls: ClientTls, expected: number, partialDir: string): Promise<DownloadRun> {
  const fetcher = new MtlsFetcher({ identity: () => ({ key: { pem: tls.key }, certPem: tls.cert, caPem: tls.ca }), partialDir, resumable: () => true });
  const started = process.hrtime.bigint();
  const bytes = await fetcher.downloadFile(url, expected, async (file) => (await stat(file)).size);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (bytes !== expected) throw new Error(`the fetcher wrote ${bytes} of ${expected} bytes`);
  return { bytes, seconds, mbPerSecond: bytes / MB / seconds };
}

/**
 * The download part: `fleetward serve` in its own process serving the large signed artifact at
 * `/updates/v1/targets/<sha256>.<target>` to one device (its own certificate), against a bare
 * node:https server (its own process, same TLS settings) serving the same file; runs alternate
 * between the two, one warm-up each first (page cache). Then the agent's fetcher.
 */
export async function measureDownload(home: UpdateHome, runs: number): Promise<DownloadResult> {
  const device = home.devices[0];
  if (device === undefined) throw new Error('no device provisioned');
  const node = await serve(home.env);
  // The baseline's own throwaway PKI (ECDSA P-256, like the node's server certificate), made with openssl.
  const certsDir = await mkdtemp(join(tmpdir(), 'fw-bench-plain-tls-'));
  const certs = await makeCertificates(certsDir);
  const [serverCert, serverKey, ca, clientCert, clientKey] = await Promise.all([certs.serverCert, certs.serverKey, certs.ca, certs.clientCert, certs.clientKey].map((f) => readFile(f, 'utf8')));
  await writeFile(join(certsDir, 'certs.json'), JSON.stringify({ certPem: serverCert, keyPem: serverKey, caPem: ca }));
  const plainChild = fork(PLAIN_SERVER, [home.big.file, join(certsDir, 'certs.json')], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const [ready] = (await once(plainChild, 'message')) as [{ port: number }];
    const plainUrl = `https://127.0.0.1:${ready.port}/file`;
    const plainTls: ClientTls = { key: clientKey as string, cert: clientCert as string, ca: ca as string };
    const fleetwardUrl = `${node.apiUrl}/updates/v1/targets/${home.big.sha256}.${home.big.target}`;
    const fleetwardTls: ClientTls = { key: device.keyPem, cert: device.certPem, ca: home.chainPem };

    const size = home.big.size;
    const fw0 = await timedGet(fleetwardUrl, fleetwardTls, size);
    const plain0 = await timedGet(plainUrl, plainTls, size);
    const fleetward: DownloadRun[] = [];
    const plain: DownloadRun[] = [];
    let fwCpu = 0;
    let plainCpu = 0;
    for (let i = 0; i < runs; i++) {
      // Alternating order: neither server always runs right after the other.
      const order = i % 2 === 0 ? (['fleetward', 'plain'] as const) : (['plain', 'fleetward'] as const);
      for (const which of order) {
        const pid = which === 'fleetward' ? node.pid : (plainChild.pid as number);
        const cpu0 = brokerCpuSeconds(pid);
        const run = await timedGet(which === 'fleetward' ? fleetwardUrl : plainUrl, which === 'fleetward' ? fleetwardTls : plainTls, size);
        const cpu = brokerCpuSeconds(pid) - cpu0;
        if (which === 'fleetward') {
          fleetward.push(run);
          fwCpu += cpu;
        } else {
          plain.push(run);
          plainCpu += cpu;
        }
        progress(`  download ${i + 1}/${runs} ${which}: ${run.mbPerSecond.toFixed(0)} MB/s`);
      }
    }
    const fetcher: DownloadRun[] = [];
    const partialDir = await mkdtemp(join(tmpdir(), 'fw-bench-fetcher-'));
    try {
      for (let i = 0; i < runs; i++) {
        const run = await fetcherGet(fleetwardUrl, fleetwardTls, size, partialDir);
        fetcher.push(run);
        progress(`  download ${i + 1}/${runs} agent fetcher: ${run.mbPerSecond.toFixed(0)} MB/s`);
      }
    } finally {
      await rm(partialDir, { recursive: true, force: true });
    }
    const mb = (runs * size) / MB;
    return { fleetward, plain, fetcher, tls: { fleetward: fw0.negotiated, plain: plain0.negotiated }, cpuPerMb: { fleetward: fwCpu / mb, plain: plainCpu / mb } };
  } finally {
    plainChild.kill('SIGTERM');
    await node.stop();
    await rm(certsDir, { recursive: true, force: true });
  }
}
