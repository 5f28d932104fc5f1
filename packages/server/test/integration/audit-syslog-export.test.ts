import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, chainHash } from '../../src/audit/audit-chain.js';
import { AuditSyslogExport, auditSyslogJob } from '../../src/audit/audit-syslog-export.js';
import type { AuditEvent } from '../../src/audit/audit-events.js';
import type { NodeContext } from '../../src/node.js';
import { DIALECTS, type Dialect } from '../helpers/environment.js';
import { freePort } from '../helpers/ports.js';
import { freshContext } from '../helpers/test-node.js';

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A throwaway CA and a server certificate for 127.0.0.1, issued with openssl. */
async function issueCertificates(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, 'ca-key.pem'), '-out', join(dir, 'ca.pem'), '-days', '1', '-subj', '/CN=Fleetward test syslog CA']);
  await run('openssl', ['req', ...ec, '-keyout', join(dir, 'server-key.pem'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca-key.pem'), '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '1', '-extfile', join(dir, 'ext.cnf')]);
}

/** Debian's rsyslog with the GnuTLS driver: RFC 5425 syslog over TLS in, one raw message per line out. */
class Rsyslog {
  readonly received: string;
  readonly #dir: string;
  readonly #port: number;
  #process: ChildProcess | null = null;

  constructor(dir: string, port: number) {
    this.#dir = dir;
    this.#port = port;
    this.received = join(dir, 'received.log');
  }

  async start(): Promise<void> {
    const d = this.#dir;
    await writeFile(
      join(d, 'rsyslog.conf'),
      [
        `global(workDirectory="${d}" DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${d}/ca.pem" DefaultNetstreamDriverCertFile="${d}/server.pem" DefaultNetstreamDriverKeyFile="${d}/server-key.pem")`,
        'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")',
        `input(type="imtcp" port="${this.#port}" address="127.0.0.1")`,
        'template(name="raw" type="string" string="%rawmsg%\\n")',
        `action(type="omfile" file="${this.received}" template="raw")`,
      ].join('\n'),
    );
    const child = spawn('rsyslogd', ['-n', '-f', join(d, 'rsyslog.conf'), '-i', join(d, 'rsyslogd.pid')], { stdio: 'ignore' });
    this.#process = child;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`rsyslogd exited with ${child.exitCode}`);
      const up = await new Promise<boolean>((resolve) => {
        const socket = connect(this.#port, '127.0.0.1', () => resolve(true)).once('error', () => resolve(false));
        socket.unref();
        socket.once('connect', () => socket.destroy());
      });
      if (up) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('rsyslogd did not start listening');
  }

  async stop(): Promise<void> {
    const child = this.#process;
    this.#process = null;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }

  /** Every audit event the collector wrote, parsed from the MSG part (after the BOM). */
  async events(): Promise<{ seq: number; hash: string; prevHash: string; [field: string]: unknown }[]> {
    const text = await readFile(this.received, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line.slice(line.indexOf('\uFEFF') + 1)) as { seq: number; hash: string; prevHash: string });
  }
}

function event(n: number): AuditEvent {
  return { actor: 'operator:o"1]\\', action: 'token.create', outcome: n % 2 === 0 ? 'success' : 'denied', target: `token:t${n}`, details: { n, text: 'grüße' } };
}

async function fill(context: NodeContext, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => context.audit.record(event(i))));
}

async function setUp(dialect: Dialect): Promise<{ context: NodeContext; rsyslog: Rsyslog; dir: string; port: number }> {
  const context = await freshContext(dialect, cleanups);
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-rsyslog-'));
  await issueCertificates(dir);
  const port = await freePort();
  const rsyslog = new Rsyslog(dir, port);
  cleanups.push(() => rm(dir, { recursive: true, force: true }), () => rsyslog.stop());
  await rsyslog.start();
  return { context, rsyslog, dir, port };
}

describe.each(DIALECTS)('audit export as RFC 5424 syslog over TLS to rsyslog, on %s', (dialect) => {
  it('delivers every event in order; survives the collector stopping mid-stream; nothing is lost', { timeout: 30_000 }, async () => {
    const { context, rsyslog, dir, port } = await setUp(dialect);
    await fill(context, 200);
    let batches = 0;
    const exporter = new AuditSyslogExport({
      store: context.store,
      clock: context.clock,
      target: { url: `tls://127.0.0.1:${port}`, ca: await readFile(join(dir, 'ca.pem')), timeoutMs: 3000 },
      batchEvents: 50,
      hostname: 'node-1',
      // The collector goes down right after the second batch was confirmed: mid-stream.
      onExported: () => void (++batches === 2 && rsyslog.stop()),
    });
    await expect(exporter.run()).rejects.toMatchObject({ code: 'FW_ERR_REMOTE' });
    const cursorDuringOutage = await exporter.cursor();
    expect(cursorDuringOutage).toBe(100);

    // More events while the collector is down; the export keeps failing and keeps its cursor.
    await fill(context, 150);
    await expect(exporter.run()).rejects.toMatchObject({ code: 'FW_ERR_REMOTE' });
    expect(await exporter.cursor()).toBe(cursorDuringOutage);

    await rsyslog.start();
    const resumed = await exporter.run();
    const head = (await context.store.db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirstOrThrow()).seq;
    expect(resumed).toMatchObject({ cursor: head, skipped: false });
    await rsyslog.stop(); // flushes its queue to the file

    const received = await rsyslog.events();
    const bySeq = new Map(received.map((e) => [e.seq, e]));
    expect([...bySeq.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    // Duplicates are possible by design (at least once) and carry the same seq and hash; here none occurred.
    expect(received.length - bySeq.size).toBe(0);
    // What the collector holds re-verifies as a hash chain on its own.
    let prevHash = GENESIS_HASH;
    for (let seq = 1; seq <= head; seq++) {
      const e = bySeq.get(seq) as { seq: number; ts: string; actor: string; action: string; target: string | null; outcome: string; source: string | null; details: string; prevHash: string; hash: string };
      expect(e.prevHash).toBe(prevHash);
      expect(chainHash({ seq, ts: e.ts, actor: e.actor, action: e.action, target: e.target, outcome: e.outcome, source: e.source, details: e.details, prevHash })).toBe(e.hash);
      prevHash = e.hash;
    }
    const raw = (await readFile(rsyslog.received, 'utf8')).split('\n')[head - 1] ?? '';
    expect(raw).toMatch(/^<10[789]>1 \S+ node-1 fleetward - \S+ \[fleetward@32473 seq="\d+" hash="[0-9a-f]{64}" prevHash="[0-9a-f]{64}" outcome="\w+" actor="operator:o\\"1\\]\\\\"\] \uFEFF\{/);
  });

  it('refuses a collector whose certificate does not chain to the configured CA (nothing is marked delivered)', { timeout: 20_000 }, async () => {
    const { context, port } = await setUp(dialect);
    const otherDir = await mkdtemp(join(tmpdir(), 'fleetward-otherca-'));
    cleanups.push(() => rm(otherDir, { recursive: true, force: true }));
    await issueCertificates(otherDir);
    const caFile = join(otherDir, 'ca.pem');
    const job = auditSyslogJob(
      { store: context.store, clock: context.clock },
      { syslogUrl: `tls://127.0.0.1:${port}`, syslogCaFile: caFile, syslogCertFile: null, syslogKeyFile: null, syslogIntervalSeconds: 5, syslogBatchEvents: 100 },
    );
    expect(job?.name).toBe('audit.syslog-export');
    await expect(job?.run()).rejects.toMatchObject({ code: 'FW_ERR_REMOTE' });
    const exporter = new AuditSyslogExport({ store: context.store, clock: context.clock, target: { url: `tls://127.0.0.1:${port}` }, batchEvents: 10 });
    expect(await exporter.cursor()).toBe(0);
    expect(auditSyslogJob({ store: context.store, clock: context.clock }, { syslogUrl: null, syslogCaFile: null, syslogCertFile: null, syslogKeyFile: null, syslogIntervalSeconds: 5, syslogBatchEvents: 100 })).toBeNull();
  });
});
