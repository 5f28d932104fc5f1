import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CrlPublisher } from '../../packages/server/src/identity/crl-publisher.js';
import { toPem } from '../../packages/server/src/identity/pki/certificate.js';
import { buildCertificateRequest } from '../../packages/server/src/identity/pki/csr.js';
import { thingName } from '../../packages/server/src/identity/registry/names.js';
import type { NodeContext } from '../../packages/server/src/node.js';
import { openBench } from '../lib/bench-home.js';
import { progress, row, type Scenario } from '../lib/report.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../packages/server/bin/fleetward.js', import.meta.url));
const RUNS = 3;
const ISSUANCES = 5_000;
const BULK_DEVICES = 10_000;
const CRL_ENTRIES = 100_000;
const OCSP_SECONDS = 3;
const OCSP_CONCURRENCY = 32;
const bench = { name: 'bench' };

export const pki: Scenario = {
  name: 'pki',
  description: 'issuance from CSRs (vs the raw node:crypto ECDSA P-256 sign rate), bulk provisioning of 10,000 devices with the CLI, a CRL of 100,000 entries, OCSP responses',
  async run() {
    const signRates: number[] = [];
    const issuanceRates: number[] = [];
    for (let i = 1; i <= RUNS; i += 1) {
      signRates.push(rawSignRate());
      issuanceRates.push(await issuanceRun());
      progress(`issuance run ${i}/${RUNS}: ${Math.round(issuanceRates.at(-1) ?? 0)} certificates/s; raw sign ${Math.round(signRates.at(-1) ?? 0)}/s`);
    }
    const bulkSeconds = await bulkRuns();
    const crlSeconds = await crlRuns();
    const ocspRates = await ocspRuns();
    const ratio = median(issuanceRates) / median(signRates);
    const rows = [
      row(`issuance from CSRs: ${ISSUANCES.toLocaleString('en-US')} ECDSA P-256 certificates, SQLite, all outstanding`, 'events/s', issuanceRates, { atLeast: 1_000 }, `${(ratio * 100).toFixed(1)}% of the raw sign rate`),
      row('raw node:crypto ECDSA P-256 sign (SHA-256, 300-byte message), one thread', 'events/s', signRates),
      row(`bulk provisioning: fleetward things provision, ${BULK_DEVICES.toLocaleString('en-US')} devices from CSRs, SQLite`, 's', bulkSeconds, { below: 30 }),
      row(`CRL with ${CRL_ENTRIES.toLocaleString('en-US')} revoked entries: build and sign`, 's', crlSeconds, { below: 5 }),
      row(`OCSP responses (in-process responder, ${OCSP_CONCURRENCY} outstanding)`, 'events/s', ocspRates, { atLeast: 2_000 }),
    ];
    return { rows, raw: { signRates, issuanceRates, bulkSeconds, crlSeconds, ocspRates } };
  },
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** What one thread of node:crypto signs per second: the floor under any issuance rate. */
function rawSignRate(): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const message = randomBytes(300);
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < 1_000) {
    sign('sha256', message, privateKey);
    count += 1;
  }
  return count / ((performance.now() - started) / 1000);
}

function csrs(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const name = `${prefix}-${String(i).padStart(5, '0')}`;
    return toPem(buildCertificateRequest(name, generateKeyPairSync('ec', { namedCurve: 'P-256' })), 'CERTIFICATE REQUEST');
  });
}

async function createThings(context: NodeContext, prefix: string, count: number): Promise<void> {
  await context.store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < count; i += 1) await context.identity.things.createWithin(trx, { name: thingName(`${prefix}-${String(i).padStart(5, '0')}`), state: 'active' }, bench);
  });
}

/** Certificates per second for ISSUANCES requests issued at once (the group commit batches them). */
async function issuanceRun(): Promise<number> {
  const home = await openBench();
  try {
    const requests = csrs('dev', ISSUANCES);
    await createThings(home.context, 'dev', ISSUANCES);
    const started = performance.now();
    await Promise.all(requests.map((csr, i) => home.context.identity.certificates.issue({ subject: `dev-${String(i).padStart(5, '0')}`, kind: 'device', csr, via: 'operator' }, bench)));
    return ISSUANCES / ((performance.now() - started) / 1000);
  } finally {
    await home.close();
  }
}

/** Wall time of `fleetward things provision` for BULK_DEVICES devices from a folder of CSRs, each run on a fresh data folder. */
async function bulkRuns(): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-bulk-'));
  try {
    progress(`writing ${BULK_DEVICES.toLocaleString('en-US')} CSRs...`);
    const csrDir = join(dir, 'csrs');
    await mkdir(csrDir);
    const lines = ['name,type,groups'];
    for (const [i, csr] of csrs('line', BULK_DEVICES).entries()) {
      const name = `line-${String(i).padStart(5, '0')}`;
      await writeFile(join(csrDir, `${name}.csr`), csr);
      lines.push(`${name},,`);
    }
    await writeFile(join(dir, 'devices.csv'), `${lines.join('\n')}\n`);
    const seconds: number[] = [];
    for (let i = 1; i <= RUNS; i += 1) {
      const env = { ...process.env, FLEETWARD_HOME: join(dir, `home-${i}`), FLEETWARD_LOG_LEVEL: 'silent' };
      await run(process.execPath, [CLI, 'init'], { env });
      const started = performance.now();
      const { stdout } = await run(process.execPath, [CLI, 'things', 'provision', '--from', join(dir, 'devices.csv'), '--csr-dir', csrDir, '--out', join(dir, `out-${i}`), '--json'], { env, maxBuffer: 64 * 1024 * 1024 });
      seconds.push((performance.now() - started) / 1000);
      const summary = JSON.parse(stdout) as { provisioned: number; failed: number };
      if (summary.provisioned !== BULK_DEVICES || summary.failed !== 0) throw new Error(`bulk provisioning run ${i} provisioned ${summary.provisioned}, failed ${summary.failed}`);
      progress(`bulk provisioning run ${i}/${RUNS}: ${seconds.at(-1)?.toFixed(2) ?? '?'} s`);
    }
    return seconds;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Seconds to build and sign a CRL of CRL_ENTRIES revoked certificates (a fresh publisher each run: no cache). */
async function crlRuns(): Promise<number[]> {
  const home = await openBench();
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-crl-'));
  try {
    const { context } = home;
    const issuing = (await context.identity.cas.hierarchy()).issuing;
    progress(`revoking ${CRL_ENTRIES.toLocaleString('en-US')} certificates...`);
    await insertRevoked(context, issuing.id);
    const seconds: number[] = [];
    let der: Buffer = Buffer.alloc(0);
    for (let i = 1; i <= RUNS; i += 1) {
      const publisher = new CrlPublisher({ store: context.store, clock: context.clock, cas: () => context.identity.cas.signingCas(), validityHours: 24 });
      const started = performance.now();
      der = await publisher.crl(issuing.id);
      seconds.push((performance.now() - started) / 1000);
      progress(`CRL run ${i}/${RUNS}: ${seconds.at(-1)?.toFixed(2) ?? '?'} s, ${der.length.toLocaleString('en-US')} bytes`);
    }
    // The CRL must be one a relying party accepts, with every entry.
    const file = join(dir, 'bench.crl');
    await writeFile(file, der);
    const text = await new Promise<string>((resolve, reject) => {
      const child = spawn('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text']);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(out));
    });
    const entries = text.split('Serial Number:').length - 1;
    if (entries !== CRL_ENTRIES) throw new Error(`the CRL holds ${entries} entries, not ${CRL_ENTRIES}`);
    return seconds;
  } finally {
    await home.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Revoked certificate rows as issuance and revocation leave them (the CRL reads no more than this). */
async function insertRevoked(context: NodeContext, caId: string): Promise<void> {
  const now = context.clock.now();
  const notAfter = new Date(now.getTime() + 30 * 86_400_000).toISOString();
  await context.store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < CRL_ENTRIES; i += 500) {
      const rows = Array.from({ length: Math.min(500, CRL_ENTRIES - i) }, () => {
        const serial = `7${randomBytes(15).toString('hex')}`;
        return {
          serial,
          ca_id: caId,
          thing_id: null,
          kind: 'device',
          template: null,
          subject_cn: serial,
          key_fingerprint: randomBytes(32).toString('hex'),
          key_algorithm: 'ECDSA-P256',
          key_storage: 'software',
          attestation: null,
          issued_via: 'operator',
          issued_by: 'bench',
          not_before: now.toISOString(),
          not_after: notAfter,
          status: 'revoked',
          revoked_at: now.toISOString(),
          revocation_reason: 'keyCompromise',
          must_rotate: 0,
          replaces: null,
          last_used_at: null,
          pem: '',
          created_at: now.toISOString(),
        };
      });
      await trx.insertInto('certificates').values(rows).execute();
    }
  });
}

/** OCSP responses per second for one request asked over and over, OCSP_CONCURRENCY at a time. */
async function ocspRuns(): Promise<number[]> {
  const home = await openBench();
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-ocsp-'));
  try {
    const { context } = home;
    await createThings(context, 'ocsp', 1);
    const issued = await context.identity.certificates.issue({ subject: 'ocsp-00000', kind: 'device', csr: csrs('ocsp', 1)[0] as string, via: 'operator' }, bench);
    const issuing = (await context.identity.cas.hierarchy()).issuing;
    await writeFile(join(dir, 'issuing.pem'), issuing.certificate.toString());
    await writeFile(join(dir, 'leaf.pem'), issued.certificatePem);
    await run('openssl', ['ocsp', '-issuer', join(dir, 'issuing.pem'), '-cert', join(dir, 'leaf.pem'), '-reqout', join(dir, 'request.der')]);
    const request = await readFile(join(dir, 'request.der'));
    await context.identity.ocsp.respond(request);
    const rates: number[] = [];
    for (let i = 1; i <= RUNS; i += 1) {
      let answered = 0;
      const started = performance.now();
      const worker = async () => {
        while (performance.now() - started < OCSP_SECONDS * 1000) {
          await context.identity.ocsp.respond(request);
          answered += 1;
        }
      };
      await Promise.all(Array.from({ length: OCSP_CONCURRENCY }, worker));
      rates.push(answered / ((performance.now() - started) / 1000));
      progress(`OCSP run ${i}/${RUNS}: ${Math.round(rates.at(-1) ?? 0)} responses/s`);
    }
    return rates;
  } finally {
    await home.close();
    await rm(dir, { recursive: true, force: true });
  }
}
