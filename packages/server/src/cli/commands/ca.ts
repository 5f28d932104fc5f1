import type { Command } from 'commander';
import { caSummaries, type CaSummary } from '../../identity/ca-repository.js';
import type { IssuingRotation } from '../../identity/ca-rotation.js';
import type { IssuingRequest } from '../../identity/offline-root.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile, writeOutputFile } from '../files.js';
import { ROOT_PASSPHRASE_ENV, rootPassphrase } from '../root-passphrase.js';
import { initOptions } from './init.js';
import { table } from '../output.js';
import { perform, segment } from '../target.js';

export function caCommand(program: Command): void {
  const ca = program.command('ca').description("Fleetward's certificate authorities");

  withJson(withConfigFlags(ca.command('show')))
    .description('the CA hierarchy: root, active and retired issuing CAs')
    .action(
      action(async (out, options) => {
        const cas = await perform(options, (context) => caSummaries(context.store.db), async (client) => (await client.call<{ cas: CaSummary[] }>('GET', '/api/v1/cas')).cas);
        out.result({ cas }, (r) => table(['id', 'role', 'status', 'key', 'not after', 'subject'], r.cas.map((c) => [c.id, c.role, c.status, c.keyOnline ? `${c.keyAlgorithm} online` : `${c.keyAlgorithm} offline`, c.notAfter, c.subject])));
      }),
    );

  withJson(withConfigFlags(ca.command('rotate-issuing')))
    .description('introduce a new issuing CA; the previous one stays trusted while devices still use its certificates')
    .option('--request-rotation', 'mark every device certificate of the previous CA "must rotate" so devices move over now')
    .action(
      action(async (out, options) => {
        const requestRotation = options.requestRotation === true;
        const rotation = await perform(
          options,
          // The node module is already loaded by the local connection; imported here to keep `--help` light.
          async (context, actor) => (await import('../../node.js')).issuingCaOperations(context).rotate(actor, { requestRotation }),
          (client) => client.call<IssuingRotation>('POST', '/api/v1/cas/rotate-issuing', { requestRotation }),
        );
        out.result(rotation, describeRotation);
      }),
    );

  // The name for it: the CA hierarchy is made when the data folder is.
  initOptions(ca.command('init'));
  offlineRootCommands(ca);
  thirdPartyCaCommands(ca);
}

function offlineRootCommands(ca: Command): void {
  withJson(withConfigFlags(ca.command('issuing-request')))
    .description('with an offline root: make the next issuing CA key (in custody) and write its CSR for the root to sign')
    .requiredOption('--out <file>', 'where to write the CSR (PEM)')
    .action(
      action(async (out, options) => {
        const request = await perform(
          options,
          async (context, actor) => (await import('../../node.js')).issuingCaOperations(context).request(actor),
          (client) => client.call<IssuingRequest>('POST', '/api/v1/cas/issuing-request'),
        );
        await writeOutputFile(String(options.out), request.csrPem, 'public');
        out.result(request, (r) => `Wrote the CSR of issuing CA ${r.id} to ${String(options.out)}\n  key SHA-256 ${r.keyFingerprint}\nSign it on the offline machine with \`fleetward ca sign-issuing\`, then run \`fleetward ca import-issuing\`.`);
      }),
    );

  withJson(ca.command('sign-issuing'))
    .description(`on the offline machine: sign an issuing CA's CSR with the root key (passphrase in ${ROOT_PASSPHRASE_ENV}); needs no data folder`)
    .requiredOption('--root-key <file>', 'the encrypted root key (PEM) written by `fleetward init --offline-root`')
    .requiredOption('--root-cert <file>', 'the root certificate (PEM); the CA chain ca.pem will do')
    .requiredOption('--csr <file>', 'the CSR written by `fleetward ca issuing-request`')
    .requiredOption('--out <file>', 'where to write the issuing CA certificate (PEM)')
    .option('--validity-days <days>', 'lifetime of the issuing CA, capped at the root\'s', '1825')
    .action(
      action(async (out, options) => {
        const validityDays = positiveInteger(options.validityDays, '--validity-days', 36_500) as number;
        const passphrase = rootPassphrase();
        const [rootKeyPem, rootCertificatePem, csrPem] = await Promise.all([readInputFile(String(options.rootKey)), readInputFile(String(options.rootCert)), readInputFile(String(options.csr))]);
        const { signIssuingCa } = await import('../../identity/offline-root.js');
        const signed = await signIssuingCa({ rootKeyPem, passphrase, rootCertificatePem, csrPem, validityDays, now: new Date() });
        await writeOutputFile(String(options.out), signed.certificatePem, 'public');
        out.result(signed, (r) => `Signed ${r.subject}, valid until ${r.notAfter}\n  key SHA-256 ${r.keyFingerprint}\nwrote ${String(options.out)}; import it with \`fleetward ca import-issuing\`.`);
      }),
    );

  withJson(withConfigFlags(ca.command('import-issuing')))
    .description('with an offline root: make the signed issuing CA certificate the active one; the previous issuing CA is retired')
    .requiredOption('--cert <file>', 'the certificate written by `fleetward ca sign-issuing`')
    .option('--request-rotation', 'mark every device certificate of the previous CA "must rotate" so devices move over now')
    .action(
      action(async (out, options) => {
        const certificate = await readInputFile(String(options.cert));
        const requestRotation = options.requestRotation === true;
        const rotation = await perform(
          options,
          async (context, actor) => (await import('../../node.js')).issuingCaOperations(context).import(certificate, actor, { requestRotation }),
          (client) => client.call<IssuingRotation>('POST', '/api/v1/cas/import-issuing', { certificate, requestRotation }),
        );
        out.result(rotation, describeRotation);
      }),
    );
}

function thirdPartyCaCommands(ca: Command): void {
  withJson(withConfigFlags(ca.command('registration-code')))
    .description('a one-time code for registering a third-party CA: sign a verification certificate with CN = this code using that CA')
    .action(
      action(async (out, options) => {
        const code = await perform(options, (context) => context.identity.thirdPartyCas.registrationCode(), (client) => client.call<{ code: string; expiresAt: string }>('POST', '/api/v1/cas/registration-code'));
        out.result(code, (c) => `Registration code (valid until ${c.expiresAt}, once):\n  ${c.code}\nMake a verification certificate with subject CN=${c.code}, signed by the CA you register.`);
      }),
    );

  withJson(withConfigFlags(ca.command('register')))
    .description("register a third-party CA with proof of possession of its key; its devices are registered just in time from --template")
    .requiredOption('--ca-cert <file>', 'the CA certificate (PEM)')
    .requiredOption('--verification-cert <file>', 'a certificate signed by that CA whose CN is a registration code (PEM)')
    .option('--template <name>', 'provisioning template for just-in-time registration of its devices')
    .action(
      action(async (out, options) => {
        const [caPem, verificationPem] = await Promise.all([readInputFile(String(options.caCert)), readInputFile(String(options.verificationCert))]);
        const template = optionalString(options.template);
        const registered = await perform(
          options,
          (context, actor) => context.identity.thirdPartyCas.register({ caPem, verificationPem, ...(template !== undefined && { template }) }, actor),
          (client) => client.call<CaSummary>('POST', '/api/v1/cas/register', { caCertificate: caPem, verificationCertificate: verificationPem, ...(template !== undefined && { template }) }),
        );
        out.result(registered, (r) => `Registered CA ${r.id} (${r.subject})`);
      }),
    );

  withJson(withConfigFlags(ca.command('deregister')))
    .description('retire a registered third-party CA: devices with its certificates are refused')
    .argument('<id>')
    .action(
      action(async (out, options, id: string) => {
        await perform(options, (context, actor) => context.identity.thirdPartyCas.deregister(id, actor), (client) => client.call<unknown>('POST', `/api/v1/cas/${segment(id)}/deregister`));
        out.result({ deregistered: id }, () => `Deregistered CA ${id}`);
      }),
    );
}

function describeRotation(r: IssuingRotation): string {
  const asked = r.rotationRequested > 0 ? `; ${r.rotationRequested} device certificate(s) marked must rotate` : '';
  return `Issuing CA ${r.current} replaces ${r.previous}${asked}. Distribute the new ca.pem to relying parties.`;
}
