import type { Command } from 'commander';
import type { IssuedCertificate } from '../../identity/certificates.js';
import type { EnrollmentTokenInfo, IssuedEnrollmentToken } from '../../identity/provisioning/enrollment-tokens.js';
import type { ProvisioningTemplate } from '../../identity/provisioning/templates.js';
import { action, withJson } from '../action.js';
import { keyValues, optionalString, positiveInteger, strings } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile, writeOutputFile } from '../files.js';
import { table } from '../output.js';
import { perform, segment } from '../target.js';

export function templatesCommand(program: Command): void {
  const templates = program.command('templates').description('fleet provisioning by claim: templates, enrollment tokens and claim certificates');

  withJson(withConfigFlags(templates.command('create')))
    .description('create a provisioning template')
    .argument('<name>')
    .requiredOption('--name-pattern <regex>', 'the names devices may take, as a regular expression matching the whole name')
    .option('--type <type>', 'thing type of provisioned things')
    .option('--group <group...>', 'groups they join')
    .option('--attr <key=value...>', 'fixed attributes')
    .option('--param <name=regex...>', 'parameters devices must send (MQTT), each with the pattern its value must match')
    .option('--policy <name...>', 'policies to attach')
    .action(
      action(async (out, options, name: string) => {
        const type = optionalString(options.type);
        const definition = { namePattern: String(options.namePattern), groups: strings(options.group), attributes: keyValues(options.attr, '--attr'), parameters: keyValues(options.param, '--param'), policies: strings(options.policy), ...(type !== undefined && { thingType: type }) };
        const template = await perform(options, (context, actor) => context.identity.templates.create(name, definition, actor), (client) => client.call<ProvisioningTemplate>('POST', '/api/v1/templates', { name, ...definition }));
        out.result(template, describeTemplate);
      }),
    );

  withJson(withConfigFlags(templates.command('list')))
    .description('list provisioning templates')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => context.identity.templates.list(), async (client) => (await client.call<{ templates: ProvisioningTemplate[] }>('GET', '/api/v1/templates')).templates);
        out.result({ templates: list }, (r) => (r.templates.length === 0 ? 'No templates.' : table(['template', 'enabled', 'names', 'type', 'groups'], r.templates.map((t) => [t.name, t.enabled ? 'yes' : 'no', t.namePattern, t.thingType ?? '-', t.groups.join(',') || '-']))));
      }),
    );

  withJson(withConfigFlags(templates.command('show')))
    .description('show a provisioning template and its enrollment tokens')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        const shown = await perform(
          options,
          async (context) => ({ template: await context.identity.templates.get(name), tokens: await context.identity.enrollmentTokens.list(name) }),
          async (client) => ({ template: await client.call<ProvisioningTemplate>('GET', `/api/v1/templates/${segment(name)}`), tokens: (await client.call<{ tokens: EnrollmentTokenInfo[] }>('GET', `/api/v1/templates/${segment(name)}/tokens`)).tokens }),
        );
        out.result(shown, (r) => [describeTemplate(r.template), ...(r.tokens.length > 0 ? ['', table(['token', 'uses left', 'expires', 'revoked'], r.tokens.map((t) => [t.id, String(t.usesLeft), t.expiresAt, t.revokedAt ?? '-']))] : [])].join('\n'));
      }),
    );

  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    withJson(withConfigFlags(templates.command(verb)))
      .description(`${verb} provisioning with a template`)
      .argument('<name>')
      .action(
        action(async (out, options, name: string) => {
          const template = await perform(options, (context, actor) => context.identity.templates.setEnabled(name, enabled, actor), (client) => client.call<ProvisioningTemplate>('PATCH', `/api/v1/templates/${segment(name)}`, { enabled }));
          out.result(template, describeTemplate);
        }),
      );
  }

  withJson(withConfigFlags(templates.command('token')))
    .description('issue an enrollment token for a template (shown once); devices use it as the EST password, the template as user name')
    .argument('<template>')
    .option('--uses <n>', 'how many devices may use it (default 1)')
    .option('--ttl-hours <n>', 'how long it is valid (default 24)')
    .action(
      action(async (out, options, template: string) => {
        const grant = { uses: positiveInteger(options.uses, '--uses', 100_000) ?? 1, ttlHours: positiveInteger(options.ttlHours, '--ttl-hours', 2160) ?? 24 };
        const token = await perform(options, (context, actor) => context.identity.enrollmentTokens.issue(template, grant, actor), (client) => client.call<IssuedEnrollmentToken>('POST', `/api/v1/templates/${segment(template)}/tokens`, grant));
        out.result(token, (t) => `Enrollment token ${t.id} for ${t.template} (${t.usesLeft} use(s), expires ${t.expiresAt}); it is shown only now:\n  ${t.token}`);
      }),
    );

  withJson(withConfigFlags(templates.command('revoke-token')))
    .description('revoke an enrollment token')
    .argument('<id>', 'enr_...')
    .action(
      action(async (out, options, id: string) => {
        const token = await perform(options, (context, actor) => context.identity.enrollmentTokens.revoke(id, actor), (client) => client.call<EnrollmentTokenInfo>('DELETE', `/api/v1/enrollment-tokens/${segment(id)}`));
        out.result(token, (t) => `Revoked enrollment token ${t.id}`);
      }),
    );

  withJson(withConfigFlags(templates.command('claim-cert')))
    .description('issue a claim certificate for a template from a CSR (CN = template name): built into devices, it allows provisioning only')
    .argument('<template>')
    .requiredOption('--csr <file>', 'CSR, PEM')
    .requiredOption('--out <file>', 'where to write the certificate and CA chain')
    .option('--validity-days <days>', 'lifetime (default: pki.claimCertValidityDays)')
    .action(
      action(async (out, options, template: string) => {
        const csr = await readInputFile(String(options.csr));
        const validityDays = positiveInteger(options.validityDays, '--validity-days', 3650);
        const issued = await perform(
          options,
          async (context, actor) => {
            await context.identity.templates.get(template);
            return context.identity.certificates.issue({ subject: template, kind: 'claim', csr, via: 'operator', template, ...(validityDays && { validityDays }) }, actor);
          },
          (client) => client.call<IssuedCertificate>('POST', `/api/v1/templates/${segment(template)}/claim-certificates`, { csr, ...(validityDays && { validityDays }) }),
        );
        await writeOutputFile(String(options.out), issued.certificatePem + issued.chainPem, 'public');
        out.result(issued, (r) => `Issued claim certificate ${r.serial} for template ${template}, valid until ${r.notAfter}; wrote ${String(options.out)}`);
      }),
    );
}

function describeTemplate(t: ProvisioningTemplate): string {
  return [
    `${t.name}  ${t.enabled ? 'enabled' : 'DISABLED'}`,
    `  names       /${t.namePattern}/`,
    `  thing type  ${t.thingType ?? '-'}; groups ${t.groups.join(', ') || '-'}`,
    `  attributes  ${Object.entries(t.attributes).map(([k, v]) => `${k}=${v}`).join(' ') || '-'}`,
    `  parameters  ${Object.entries(t.parameters).map(([k, v]) => `${k}=/${v}/`).join(' ') || '-'}`,
    ...(t.policies.length > 0 ? [`  policies    ${t.policies.join(', ')}`] : []),
  ].join('\n');
}
