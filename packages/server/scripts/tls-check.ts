#!/usr/bin/env node
// TLS configuration check (rules 2 and 3): runs Debian's testssl.sh against the device gateway and
// the operator API and fails on any protocol below TLS 1.2, any cipher suite that is not AEAD or not
// forward secret, any vulnerability testssl rates LOW or worse, or a gateway that completes an MQTT
// exchange with a client that presented no certificate.
//
//   npm run tls:check                                        starts a throwaway node and checks it
//   npm run tls:check -- --mqtt HOST:PORT --api HOST:PORT    checks a running node
//
// Exit 0: every check passed; 1: a check failed (each failure printed); 2: could not run.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../bin/fleetward.js', import.meta.url));
const BELOW_TLS_1_2 = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1'];
const WEAK_CATEGORIES = ['cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE'];
const AEAD = /^(AESGCM|ChaCha20|AESCCM)/;
const FORWARD_SECRET = /^(ECDH|DH)\b/;
const BAD_SEVERITIES = new Set(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);

/** The parts of a testssl JSON scan result the check reads. */
interface Finding {
  readonly id: string;
  readonly severity: string;
  readonly finding: string;
}
export interface Scan {
  readonly protocols?: readonly Finding[];
  readonly ciphers?: readonly Finding[];
  readonly cipherTests?: readonly Finding[];
  readonly vulnerabilities?: readonly Finding[];
}
type Targets = Partial<Record<'mqtt' | 'api', string>>;

/** What testssl found wrong with one listener: a list of failures, empty when it passed. */
export function judge(scan: Scan): string[] {
  const failures: string[] = [];
  for (const f of scan.protocols ?? []) {
    if (BELOW_TLS_1_2.includes(f.id) && !/not offered/.test(f.finding)) failures.push(`${f.id} is offered`);
  }
  for (const f of scan.ciphers ?? []) {
    if (WEAK_CATEGORIES.includes(f.id) && !/not offered/.test(f.finding)) failures.push(`${f.id}: ${f.finding}`);
  }
  const suites = (scan.cipherTests ?? []).map((f) => suiteOf(f.finding));
  if (suites.length === 0) failures.push('no cipher suite could be enumerated');
  for (const { name, kx, enc } of suites) {
    if (!FORWARD_SECRET.test(kx)) failures.push(`${name} is not forward secret (key exchange ${kx})`);
    if (!AEAD.test(enc)) failures.push(`${name} is not AEAD (encryption ${enc})`);
  }
  for (const f of scan.vulnerabilities ?? []) {
    if (BAD_SEVERITIES.has(f.severity)) failures.push(`${f.id}: ${f.finding}`);
  }
  return failures;
}

/** A testssl cipher line: hexcode, name, key exchange (with its size for ECDH/DH), encryption, bits, RFC name. */
function suiteOf(line: string): { name: string; kx: string; enc: string } {
  const [, name = '', kx = '', ...rest] = line.trim().split(/\s+/);
  const enc = /^\d+$/.test(rest[0] ?? '') ? rest[1] : rest[0];
  return { name, kx, enc: enc ?? '' };
}

async function testssl(target: string, dir: string): Promise<Scan> {
  const json = join(dir, `${target.replace(/[^\w]/g, '_')}.json`);
  try {
    await run('testssl', ['--quiet', '--color', '0', '--warnings', 'off', '-p', '-s', '-e', '-U', '--jsonfile-pretty', json, target], { maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    // testssl exits non-zero when it found something; the JSON says what.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('testssl is not installed (Debian package testssl.sh)');
  }
  const report = JSON.parse(await readFile(json, 'utf8')) as { scanResult: Scan[] };
  const scan = report.scanResult[0];
  if (scan === undefined) throw new Error(`testssl produced no result for ${target}`);
  return scan;
}

/** A client with no certificate must never get an MQTT answer, over TLS 1.2 or 1.3. */
function anonymousMqtt(host: string, port: number, version: 'TLSv1.2' | 'TLSv1.3'): Promise<string[]> {
  const connectPacket = Buffer.from('101000044d5154540502003c00000373656e', 'hex');
  return new Promise((resolve) => {
    let answered = false;
    const socket = connect({ host, port, minVersion: version, maxVersion: version, rejectUnauthorized: false });
    socket.once('secureConnect', () => socket.write(connectPacket));
    socket.on('data', () => (answered = true));
    socket.once('error', () => undefined);
    socket.once('close', () => resolve(answered ? [`a client without a certificate got an MQTT answer over ${version}`] : []));
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}

function parseArgs(argv: readonly string[]): Targets {
  const targets: Record<string, string | undefined> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i] ?? '';
    if (flag === '--mqtt' || flag === '--api') targets[flag.slice(2)] = argv[i + 1];
    else throw new Error(`unknown argument ${flag} (use --mqtt HOST:PORT --api HOST:PORT)`);
  }
  return targets;
}

/** Starts a node on a throwaway data folder and free ports; resolves with its targets and a stop function. */
async function throwawayNode(dir: string): Promise<{ targets: Targets; stop: () => Promise<unknown> }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--json'], {
    env: { ...process.env, FLEETWARD_HOME: join(dir, 'home'), FLEETWARD_API_PORT: '0', FLEETWARD_MQTT_PORT: '0', FLEETWARD_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = await new Promise<{ mqttUrl: string; apiUrl: string }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) resolve(JSON.parse(line) as { mqttUrl: string; apiUrl: string });
    });
    child.once('exit', (code) => reject(new Error(`fleetward serve exited with ${code}`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
  return { targets: { mqtt: new URL(ready.mqttUrl).host, api: new URL(ready.apiUrl).host }, stop };
}

/** testssl's verdict on one listener, and for MQTT that a client without a certificate gets no answer. */
async function listenerFailures(name: keyof Targets, target: string, dir: string): Promise<string[]> {
  const failures = judge(await testssl(target, dir));
  if (name === 'mqtt') {
    const { hostname, port } = new URL(`tls://${target}`);
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) failures.push(...(await anonymousMqtt(hostname.replace(/^\[|\]$/g, ''), Number(port), version)));
  }
  return failures;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-tls-check-'));
  let node: Awaited<ReturnType<typeof throwawayNode>> | null = null;
  try {
    let targets = parseArgs(process.argv.slice(2));
    if (Object.keys(targets).length === 0) {
      node = await throwawayNode(dir);
      targets = node.targets;
    }
    // The listeners are scanned at once: testssl spends most of its time waiting on handshakes.
    const reports = await Promise.all((Object.entries(targets) as [keyof Targets, string][]).map(async ([name, target]) => ({ name, target, failures: await listenerFailures(name, target, dir) })));
    let failed = 0;
    for (const { name, target, failures } of reports) {
      console.log(`${failures.length === 0 ? 'PASS' : 'FAIL'} ${name} ${target}`);
      for (const failure of failures) console.log(`  - ${failure}`);
      failed += failures.length;
    }
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`tls-check: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  });
}
