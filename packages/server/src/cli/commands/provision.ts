import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import type { CertificateInfo } from '../../identity/certificate-repository.js';
import type { ManufacturedDevice, ManufacturingResult } from '../../identity/manufacturing.js';
import { toPem } from '../../identity/pki/certificate.js';
import { buildCertificateRequest, MAX_CSR_BYTES, parseCertificateRequest } from '../../identity/pki/csr.js';
import { action, withJson } from '../action.js';
import { writePrivateFile } from '../../config/home.js';
import { positiveInteger } from '../arguments.js';
import { readInputFile } from '../files.js';
import { withConfigFlags } from '../config-flags.js';
import { parseCsv } from '../csv.js';
import { ProgressBar } from '../progress.js';
import { segment, via, withConnection, type Connection } from '../target.js';

interface Plan {
  readonly device: Omit<ManufacturedDevice, 'csr'>;
  /** The CSR file named for the device (CSR mode). */
  readonly csrFile: string | null;
}

interface Outcome {
  readonly name: string;
  readonly status: 'provisioned' | 'recovered' | 'skipped' | 'failed';
  readonly serial?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

const DEFAULT_BATCH = 200;

export function provisionCommand(things: Command): void {
  withJson(withConfigFlags(things.command('provision')))
    .description('bulk provisioning for a production line: create things from a CSV, each with its certificate, resumable')
    .requiredOption('--from <file>', 'CSV: name[,type][,groups (a;b)][,csr][,attr.<key>...] with a header row')
    .requiredOption('--out <dir>', 'where each device\'s certificate chain (<name>.pem) and, with --generate-keys, key (<name>.key) are written')
    .option('--csr-dir <dir>', 'folder of CSRs made on the devices: <name>.csr, or the file in the csr column')
    .option('--generate-keys', 'generate each device key here instead (written once to --out, never stored or sent)')
    .option('--batch <n>', `devices per transaction (1-500, default ${DEFAULT_BATCH})`)
    .action(
      action(async (out, options) => {
        const csrDir = typeof options.csrDir === 'string' ? options.csrDir : null;
        const generateKeys = options.generateKeys === true;
        if ((csrDir === null) === !generateKeys) throw new FleetwardError('FW_ERR_USAGE', 'give either --csr-dir (keys made on the devices) or --generate-keys');
        const outDir = String(options.out);
        const batchSize = positiveInteger(options.batch, '--batch', 500) ?? DEFAULT_BATCH;
        const plans = await readPlan(String(options.from));
        // Keys are secrets: their folder is private.
        await mkdir(outDir, { recursive: true, mode: generateKeys ? 0o700 : 0o755 });

        const outcomes: Outcome[] = [];
        const todo: Plan[] = [];
        for (const plan of plans) {
          if (await finished(outDir, plan.device.name, generateKeys)) outcomes.push({ name: plan.device.name, status: 'skipped' });
          else todo.push(plan);
        }
        const bar = new ProgressBar('provisioning', plans.length, !out.json && process.stderr.isTTY === true);
        const failedCount = () => outcomes.filter((o) => o.status === 'failed').length;
        bar.update(outcomes.length, 0);
        await withConnection(options, async (connection) => {
          for (let i = 0; i < todo.length; i += batchSize) {
            outcomes.push(...(await runBatch(connection, todo.slice(i, i + batchSize), { outDir, csrDir, generateKeys })));
            bar.update(outcomes.length, failedCount());
          }
        });
        bar.finish();
        const summary = {
          provisioned: outcomes.filter((o) => o.status === 'provisioned').length,
          recovered: outcomes.filter((o) => o.status === 'recovered').length,
          skipped: outcomes.filter((o) => o.status === 'skipped').length,
          failed: failedCount(),
          report: join(outDir, 'provision-report.json'),
        };
        await writeFile(summary.report, `${JSON.stringify({ ...summary, devices: outcomes }, null, 2)}\n`);
        out.result({ ...summary, failures: outcomes.filter((o) => o.status === 'failed') }, (r) =>
          [
            `Provisioned ${r.provisioned}, recovered ${r.recovered} after an interrupted run, skipped ${r.skipped} already done, failed ${r.failed}.`,
            ...r.failures.slice(0, 20).map((f) => `  ${f.name}: ${f.error?.message ?? ''} (${f.error?.code ?? ''})`),
            ...(r.failures.length > 20 ? [`  ... and ${r.failures.length - 20} more`] : []),
            `Report: ${r.report}`,
          ].join('\n'),
        );
        if (summary.failed > 0) process.exitCode = 1;
      }),
    );
}

/** The devices of a CSV, validated for shape (the node validates the content). */
async function readPlan(file: string): Promise<Plan[]> {
  const text = await readInputFile(file);
  const { columns, rows } = parseCsv(text);
  if (!columns.includes('name')) throw new FleetwardError('FW_ERR_VALIDATION', `${file} has no name column`);
  const unknown = columns.filter((c) => !['name', 'type', 'groups', 'csr'].includes(c) && !c.startsWith('attr.'));
  if (unknown.length > 0) throw new FleetwardError('FW_ERR_VALIDATION', `${file} has unknown columns: ${unknown.join(', ')} (use attr.<key> for attributes)`);
  const seen = new Set<string>();
  return rows.map((row, index) => {
    const name = (row.name ?? '').trim();
    if (name === '') throw new FleetwardError('FW_ERR_VALIDATION', `CSV line ${index + 2}: the name is empty`, { line: index + 2 });
    if (seen.has(name)) throw new FleetwardError('FW_ERR_VALIDATION', `CSV line ${index + 2}: ${name} appears twice`, { line: index + 2 });
    seen.add(name);
    const attributes = Object.fromEntries(Object.entries(row).filter(([k, v]) => k.startsWith('attr.') && v !== '').map(([k, v]) => [k.slice(5), v]));
    const groups = (row.groups ?? '').split(';').map((g) => g.trim()).filter(Boolean);
    const type = (row.type ?? '').trim();
    return {
      device: { name, ...(type !== '' && { type }), ...(groups.length > 0 && { groups }), ...(Object.keys(attributes).length > 0 && { attributes }) },
      csrFile: row.csr !== undefined && row.csr.trim() !== '' ? row.csr.trim() : null,
    };
  });
}

async function runBatch(connection: Connection, plans: readonly Plan[], settings: { outDir: string; csrDir: string | null; generateKeys: boolean }): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const devices: ManufacturedDevice[] = [];
  const keys = new Map<string, KeyObject>();
  for (const plan of plans) {
    const name = plan.device.name;
    try {
      if (settings.generateKeys) {
        const key = await deviceKey(settings.outDir, name);
        keys.set(name, key);
        devices.push({ ...plan.device, csr: toPem(buildCertificateRequest(name, { privateKey: key, publicKey: createPublicKey(key) }), 'CERTIFICATE REQUEST'), keyStorage: 'software' });
      } else {
        devices.push({ ...plan.device, csr: await readDeviceCsr(settings.csrDir as string, plan.csrFile ?? `${name}.csr`) });
      }
    } catch (error) {
      outcomes.push({ name, status: 'failed', error: describe(error) });
    }
  }
  if (devices.length === 0) return outcomes;
  const results = await via(
    connection,
    (context, actor) => context.identity.manufacturing.provision(devices, actor),
    async (client) => (await client.call<{ results: ManufacturingResult[] }>('POST', '/api/v1/things/provision', { devices: devices.map((d) => ({ ...d, csr: d.csr.toString() })) })).results,
  );
  for (const [i, result] of results.entries()) {
    const device = devices[i] as ManufacturedDevice;
    outcomes.push(await settle(connection, result, device, keys.get(device.name) ?? null, settings.outDir));
  }
  return outcomes;
}

/**
 * Writes the outcome of one device. A device the node already provisioned (the run before was
 * interrupted after the commit) is finished from the node's record when its key matches.
 */
async function settle(connection: Connection, result: ManufacturingResult, device: ManufacturedDevice, key: KeyObject | null, outDir: string): Promise<Outcome> {
  if (result.ok) {
    await finish(outDir, device.name, result.certificate.certificatePem + result.certificate.chainPem, key !== null);
    return { name: device.name, status: 'provisioned', serial: result.certificate.serial };
  }
  const serial = result.error.serial;
  if (result.error.code !== 'FW_ERR_CONFLICT' || serial === undefined) {
    if (key !== null) await rm(join(outDir, `${device.name}.key.partial`), { force: true });
    return { name: device.name, status: 'failed', error: result.error };
  }
  const existing = await via(connection, (context) => context.identity.certificates.get(serial), (client) => client.call<CertificateInfo>('GET', `/api/v1/certificates/${segment(serial)}`));
  const expected = key !== null ? createPublicKey(key) : createPublicKey({ key: parseCertificateRequest(device.csr).subjectPublicKeyInfo, format: 'der', type: 'spki' });
  if (!new X509Certificate(existing.pem).publicKey.equals(expected)) {
    return { name: device.name, status: 'failed', error: { code: 'FW_ERR_CONFLICT', message: `${device.name} is already provisioned with another key (certificate ${serial}); revoke it first to provision it again` } };
  }
  const chain = await via(connection, async (context) => (await context.identity.cas.hierarchy()).chainPem, (client) => client.text('/pki/ca.pem'));
  await finish(outDir, device.name, existing.pem + chain, key !== null);
  return { name: device.name, status: 'recovered', serial };
}

/** The device key: the one a previous, interrupted run generated, or a new one written before use. */
async function deviceKey(outDir: string, name: string): Promise<KeyObject> {
  const partial = join(outDir, `${name}.key.partial`);
  const existing = await readFile(partial, 'utf8').catch(() => null);
  if (existing !== null) return createPrivateKey(existing);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // Written whole (temporary file, fsync, rename) before the CSR leaves: if the node commits and
  // we crash, the key survives; if we crash while writing, no half key is left to be read back.
  await writePrivateFile(partial, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return privateKey;
}

/** Makes a device's files final: the certificate file appears last, and marks the device done. */
async function finish(outDir: string, name: string, pem: string, withKey: boolean): Promise<void> {
  const certificate = join(outDir, `${name}.pem`);
  await writeFile(`${certificate}.partial`, pem, { mode: 0o644 });
  if (withKey) await rename(join(outDir, `${name}.key.partial`), join(outDir, `${name}.key`));
  await rename(`${certificate}.partial`, certificate);
}

async function finished(outDir: string, name: string, withKey: boolean): Promise<boolean> {
  const exists = (file: string) => stat(join(outDir, file)).then(() => true, () => false);
  return (await exists(`${name}.pem`)) && (!withKey || (await exists(`${name}.key`)));
}

async function readDeviceCsr(dir: string, file: string): Promise<Buffer> {
  if (file.includes('/') || file.includes('\\') || file.startsWith('.')) throw new FleetwardError('FW_ERR_VALIDATION', `CSR file name ${JSON.stringify(file)} must be a plain file name inside --csr-dir`);
  const path = join(dir, file);
  const csr = await readFile(path).catch((error: Error) => {
    throw new FleetwardError('FW_ERR_NOT_FOUND', `cannot read the CSR ${path}: ${error.message}`);
  });
  if (csr.length > MAX_CSR_BYTES * 2) throw new FleetwardError('FW_ERR_CSR_MALFORMED', `${path} is larger than a CSR can be`);
  return csr.includes('-----BEGIN') ? csr : Buffer.from(toPem(csr, 'CERTIFICATE REQUEST'));
}

function describe(error: unknown): { code: string; message: string } {
  return error instanceof FleetwardError ? { code: error.code, message: error.message } : { code: 'FW_ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) };
}
