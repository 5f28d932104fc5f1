import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowAllHooks, isLoopback } from '../../src/conformance/conformance-server.js';
import { parseRunnerArguments, UsageError } from '../../src/conformance/runner-arguments.js';
import { RawClient } from '../helpers/raw-client.js';

const root = fileURLToPath(new URL('../../../..', import.meta.url));
const main = 'packages/broker/src/conformance/main.ts';

interface Runner {
  readonly child: ChildProcess;
  readonly urls: string[];
  readonly exited: Promise<number | null>;
}

/** Starts the runner as `npm run broker:conformance` would, from its TypeScript source. */
async function startRunner(args: readonly string[]): Promise<Runner> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let output = '';
  const urls = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runner printed no URL: ${output}`)), 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const expected = args.includes('--ipv6') ? 2 : 1;
      const lines = output.split('\n').filter((line) => /^mqtts?:\/\//.test(line));
      if (lines.length === expected) {
        clearTimeout(timer);
        resolve(lines);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', () => reject(new Error(`runner exited: ${output}`)));
  });
  return { child, urls, exited };
}

function run(args: readonly string[]): { status: number; output: string } {
  try {
    return { status: 0, output: execFileSync(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, encoding: 'utf8', stdio: 'pipe' }) };
  } catch (error) {
    const failed = error as { status: number; stdout: string; stderr: string };
    return { status: failed.status, output: failed.stdout + failed.stderr };
  }
}

describe('the conformance runner (npm run broker:conformance)', () => {
  it('serves the engine on loopback with allow-all hooks, refuses --deny-subscribe filters, and exits 0 on SIGTERM', async () => {
    const runner = await startRunner(['--port', '0', '--deny-subscribe', 'test/nosubscribe']);
    expect(runner.urls).toEqual([expect.stringMatching(/^mqtt:\/\/127\.0\.0\.1:\d+$/)]);
    const port = Number(new URL(runner.urls[0] as string).port);
    const raw = await RawClient.open(port, 5);
    await raw.connect();
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: ['test/nosubscribe', 'anything/#'].map((topic) => ({ topic, qos: 1 as const, nl: false, rap: false, rh: 0 })) });
    expect(await raw.next('suback')).toMatchObject({ granted: [0x80, 1] });
    raw.end();
    runner.child.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
  });

  it('also listens on ::1 with --ipv6, and exits 0 on SIGINT', async () => {
    const runner = await startRunner(['--port', '0', '--ipv6']);
    expect(runner.urls[1]).toMatch(/^mqtt:\/\/\[::1\]:\d+$/);
    const client = await connectAsync(runner.urls[1] as string, { reconnectPeriod: 0 });
    await client.endAsync();
    runner.child.kill('SIGINT');
    expect(await runner.exited).toBe(0);
  });

  it('prints its usage with --help, and exits 2 on bad usage', () => {
    expect(run(['--help'])).toMatchObject({ status: 0, output: expect.stringContaining('usage: npm run broker:conformance') });
    expect(run(['--port', 'eighty'])).toMatchObject({ status: 2, output: expect.stringContaining('--port needs a port number') });
    expect(run(['--port', '1883', '--tls-ca', 'ca.pem'])).toMatchObject({ status: 2, output: expect.stringContaining('go together') });
    expect(run(['--port', '1883', '--bogus'])).toMatchObject({ status: 2 });
  });

  describe('with --tls-ca, --tls-cert and --tls-key: mutual TLS', () => {
    let folder: string;
    const file = (name: string): string => join(folder, name);
    beforeAll(() => {
      folder = mkdtempSync(join(tmpdir(), 'fleetward-runner-'));
      const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: folder, stdio: 'pipe' });
      openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test CA');
      writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
      for (const [name, extension] of [['server', ['-extfile', 'server.ext']], ['client', []]] as const) {
        openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
        openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', ...extension);
      }
    });
    afterAll(() => rmSync(folder, { recursive: true, force: true }));

    it('serves MQTT over TLS to a client with a certificate from the CA, and refuses one without', async () => {
      const runner = await startRunner(['--port', '0', '--tls-ca', file('ca.pem'), '--tls-cert', file('server.pem'), '--tls-key', file('server-key.pem')]);
      expect(runner.urls[0]).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
      const ca = readFileSync(file('ca.pem'));
      const client = await connectAsync(runner.urls[0] as string, { ca, cert: readFileSync(file('client.pem')), key: readFileSync(file('client-key.pem')), reconnectPeriod: 0, protocolVersion: 5 });
      await client.subscribeAsync('tls/check', { qos: 1 });
      await client.endAsync();
      await expect(connectAsync(runner.urls[0] as string, { ca, reconnectPeriod: 0, connectTimeout: 2000 })).rejects.toThrow();
      runner.child.kill('SIGTERM');
      expect(await runner.exited).toBe(0);
    });
  });

  it('admits only loopback clients', () => {
    expect(['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', undefined].map(isLoopback)).toEqual([false, false, false, false]);
    const hooks = allowAllHooks([]);
    const request = { protocolVersion: 5, clientId: 'c', assignedClientId: undefined, cleanStart: true, keepAliveSeconds: 0, sessionExpirySeconds: 0, username: undefined, password: undefined, will: undefined, userProperties: undefined, authentication: undefined } as const;
    expect(hooks.admit(request, { transport: 'tcp', remoteAddress: '192.0.2.1', remotePort: 1 })).toMatchObject({ admit: false, reasonCode: 0x87 });
    expect(hooks.admit(request, { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 1 })).toMatchObject({ admit: true });
  });

  it('parses its arguments', () => {
    expect(parseRunnerArguments(['--port', '1883', '--deny-subscribe', 'a', '--deny-subscribe', 'b/#'])).toEqual({ port: 1883, denySubscribe: ['a', 'b/#'], tls: undefined, ipv6: false });
    expect(() => parseRunnerArguments([])).toThrow(UsageError);
    expect(() => parseRunnerArguments(['--port', '70000'])).toThrow(UsageError);
  });
});
