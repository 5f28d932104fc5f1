import type { Command } from 'commander';
import { caSummaries, type CaSummary } from '../../identity/ca-repository.js';
import type { IssuingRotation } from '../../identity/ca-rotation.js';
import { readFile } from 'node:fs/promises';
import { FleetwardError } from '@fleetward/protocol';
import { action, withJson } from '../action.js';
import { optionalString } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
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
          async (context, actor) => (await import('../../node.js')).rotateIssuingCaOf(context, actor, { requestRotation }),
          (client) => client.call<IssuingRotation>('POST', '/api/v1/cas/rotate-issuing', { requestRotation }),
        );
        out.result(rotation, (r) => `New issuing CA ${r.current} replaces ${r.previous}${r.rotationRequested > 0 ? `; ${r.rotationRequested} device certificate(s) marked must rotate` : ''}. Distribute the new ca.pem to relying parties.`);
      }),
    );

  thirdPartyCaCommands(ca);
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
        const read = (file: unknown) => readFile(String(file), 'utf8').catch((error: Error) => {
          throw new FleetwardError('FW_ERR_USAGE', `cannot read ${String(file)}: ${error.message}`);
        });
        const [caPem, verificationPem] = await Promise.all([read(options.caCert), read(options.verificationCert)]);
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
