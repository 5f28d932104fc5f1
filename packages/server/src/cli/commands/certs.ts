import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import { KEY_STORAGES, REVOCATION_REASONS, type CertificateInfo, type KeyStorage, type RevocationReason } from '../../identity/certificate-repository.js';
import type { IssuedCertificate } from '../../identity/certificates.js';
import { toPem } from '../../identity/pki/certificate.js';
import { MAX_CSR_BYTES } from '../../identity/pki/csr.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { writeOutputFile } from '../files.js';
import { credentialAuditCommand } from './credential-audit.js';
import { table } from '../output.js';
import { perform, query, segment } from '../target.js';

const REASONS = Object.keys(REVOCATION_REASONS) as RevocationReason[];

export function certsCommand(program: Command): void {
  const certs = program.command('certs').description('device certificates: issue from a CSR, list, show, revoke, rotate');

  withJson(withConfigFlags(certs.command('issue')))
    .description("issue a certificate from a device's CSR (its private key never leaves the device); writes the certificate and CA chain")
    .requiredOption('--thing <name>', 'the thing the certificate is for (the CSR subject CN must be this name)')
    .requiredOption('--csr <file>', 'the CSR, PEM or DER')
    .option('--out <file>', 'where to write certificate + issuing CA + root (PEM); default: standard output')
    .addOption(new Option('--key-storage <where>', 'where the device keeps its key').choices(KEY_STORAGES))
    .option('--validity-days <days>', 'certificate lifetime (default: pki.deviceCertValidityDays)')
    .action(
      action(async (out, options) => {
        const thing = String(options.thing);
        const csr = await readCsr(String(options.csr));
        const validityDays = positiveInteger(options.validityDays, '--validity-days', 397);
        const keyStorage = optionalString(options.keyStorage) as KeyStorage | undefined;
        const issued = await perform(
          options,
          (context, actor) => context.identity.certificates.issue({ subject: thing, kind: 'device', csr, via: 'operator', ...(keyStorage && { keyStorage }), ...(validityDays && { validityDays }) }, actor),
          (client) => client.call<IssuedCertificate>('POST', `/api/v1/things/${segment(thing)}/certificates`, { csr: csr.includes('-----BEGIN') ? csr.toString('utf8') : toPem(csr, 'CERTIFICATE REQUEST'), ...(keyStorage && { keyStorage }), ...(validityDays && { validityDays }) }),
        );
        const pem = issued.certificatePem + issued.chainPem;
        if (typeof options.out === 'string') await writeOutputFile(options.out, pem, 'public');
        else if (!out.json) process.stdout.write(pem);
        out.result({ ...issued, ...(typeof options.out === 'string' && { out: options.out }) }, (r) => (typeof options.out === 'string' ? `Issued certificate ${r.serial} for ${r.subject}, valid until ${r.notAfter}; wrote ${options.out}` : ''));
      }),
    );

  withJson(withConfigFlags(certs.command('list')))
    .description('list certificates')
    .option('--thing <name>', "only this thing's")
    .addOption(new Option('--status <status>', 'only active or revoked').choices(['active', 'revoked']))
    .option('--after <serial>', 'start after this serial (paging)')
    .option('--limit <n>', 'at most this many (1-500)', '100')
    .action(
      action(async (out, options) => {
        const limit = positiveInteger(options.limit, '--limit', 500) ?? 100;
        const [thing, after] = [options.thing, options.after].map(optionalString);
        const status = options.status === 'active' || options.status === 'revoked' ? options.status : undefined;
        const page = await perform(
          options,
          (context) => context.identity.certificates.list({ limit, ...(thing !== undefined && { thing }), ...(status !== undefined && { status }), ...(after !== undefined && { after }) }),
          (client) => client.call<{ certificates: CertificateInfo[]; next: string | null }>('GET', `/api/v1/certificates${query({ limit, thing, status, after })}`),
        );
        out.result(page, (p) =>
          [
            p.certificates.length === 0
              ? 'No certificates.'
              : table(['serial', 'subject', 'kind', 'status', 'not after', 'key', 'via'], p.certificates.map((c) => [c.serial, c.subject, c.kind, c.status + (c.mustRotate ? ' (must rotate)' : ''), c.notAfter, `${c.keyAlgorithm}/${c.keyStorage}`, c.issuedVia])),
            ...(p.next ? [`(more: --after ${p.next})`] : []),
          ].join('\n'),
        );
      }),
    );

  withJson(withConfigFlags(certs.command('show')))
    .description('show one certificate')
    .argument('<serial>')
    .option('--pem', 'print only the certificate PEM')
    .action(
      action(async (out, options, serial: string) => {
        const info = await perform(options, (context) => context.identity.certificates.get(serial), (client) => client.call<CertificateInfo>('GET', `/api/v1/certificates/${segment(serial)}`));
        if (options.pem === true && !out.json) process.stdout.write(info.pem);
        else out.result(info, describeCertificate);
      }),
    );

  withJson(withConfigFlags(certs.command('revoke')))
    .description('revoke a certificate, or every certificate of a thing (--thing); revocation is final')
    .argument('[serial]')
    .option('--thing <name>', 'revoke all certificates of this thing')
    .addOption(new Option('--reason <reason>', 'RFC 5280 reason').choices(REASONS).makeOptionMandatory())
    .action(
      action(async (out, options, serial: string | undefined) => {
        const reason = options.reason as RevocationReason;
        const thing = optionalString(options.thing);
        if ((serial === undefined) === (thing === undefined)) throw new FleetwardError('FW_ERR_USAGE', 'give either a serial or --thing');
        const revoked =
          thing !== undefined
            ? await perform(options, (context, actor) => context.identity.certificates.revokeThing(thing, reason, actor), async (client) => (await client.call<{ revoked: string[] }>('POST', `/api/v1/things/${segment(thing)}/certificates/revoke`, { reason })).revoked)
            : [
                (await perform(options, (context, actor) => context.identity.certificates.revoke(serial as string, reason, actor), (client) => client.call<CertificateInfo>('POST', `/api/v1/certificates/${segment(serial as string)}/revoke`, { reason }))).serial,
              ];
        out.result({ revoked, reason }, (r) => (r.revoked.length === 0 ? 'No active certificate to revoke.' : `Revoked ${r.revoked.join(', ')} (${r.reason})`));
      }),
    );

  withJson(withConfigFlags(certs.command('rotate')))
    .description('mark a certificate "must rotate": the device is told to renew it with a new key')
    .argument('<serial>')
    .action(
      action(async (out, options, serial: string) => {
        const info = await perform(options, (context, actor) => context.identity.certificates.requestRotation(serial, actor), (client) => client.call<CertificateInfo>('POST', `/api/v1/certificates/${segment(serial)}/rotate`));
        out.result(info, describeCertificate);
      }),
    );

  credentialAuditCommand(certs);
}

async function readCsr(file: string): Promise<Buffer> {
  let csr: Buffer;
  try {
    csr = await readFile(file);
  } catch (error) {
    throw new FleetwardError('FW_ERR_USAGE', `cannot read the CSR file ${file}: ${(error as Error).message}`);
  }
  if (csr.length > MAX_CSR_BYTES * 2) throw new FleetwardError('FW_ERR_CSR_MALFORMED', `the CSR file ${file} is larger than a CSR can be`);
  return csr;
}

function describeCertificate(c: CertificateInfo): string {
  return [
    `${c.serial}  ${c.status}${c.mustRotate ? ' (must rotate)' : ''}${c.revocationReason ? ` (${c.revocationReason} at ${c.revokedAt})` : ''}`,
    `  subject     ${c.kind === 'device' ? 'thing' : 'template'} ${c.subject}`,
    `  valid       ${c.notBefore} → ${c.notAfter}`,
    `  key         ${c.keyAlgorithm}, ${c.keyStorage}; fingerprint ${c.keyFingerprint}`,
    `  issued      via ${c.issuedVia} by ${c.issuedBy}${c.replaces ? `, renewing ${c.replaces}` : ''}`,
  ].join('\n');
}
