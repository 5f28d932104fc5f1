import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import { attachmentTarget, type FleetAnalysis, type PolicyAttachment, type Simulation, type StoredPolicy, type StoredPolicyVersion } from '../../access/policy-store/index.js';
import { serializePolicy, type AttachmentTarget } from '../../access/policy/index.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile } from '../files.js';
import { table } from '../output.js';
import { perform, query, segment } from '../target.js';

/** A JSON file named on the command line; unreadable or not JSON is bad input (exit 2). */
async function jsonFile(file: string): Promise<unknown> {
  const text = await readInputFile(file);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FleetwardError('FW_ERR_VALIDATION', `${file} is not JSON: ${(error as Error).message}`, { path: '' });
  }
}

function targetOf(options: Record<string, unknown>): AttachmentTarget {
  return attachmentTarget({ thing: optionalString(options.thing), group: optionalString(options.group), certificate: optionalString(options.cert) });
}

export function policiesCommand(program: Command): void {
  const policies = program.command('policies').description('device policies: create, version, attach, simulate, analyze, import from AWS IoT');

  withJson(withConfigFlags(policies.command('create')))
    .description('create a policy from a document (docs/policies.md)')
    .argument('<name>')
    .requiredOption('--file <file>', 'the policy document, JSON')
    .action(
      action(async (out, options, name: string) => {
        const document = await jsonFile(String(options.file));
        const created = await perform(options, (context, actor) => context.policies.create(name, document, actor), (client) => client.call<StoredPolicy>('POST', '/api/v1/policies', { name, document }));
        out.result(created, (p) => `Created policy ${p.name} (version ${p.defaultVersion})`);
      }),
    );

  withJson(withConfigFlags(policies.command('update')))
    .description('add a version to a policy; it is in force at once unless --no-default')
    .argument('<name>')
    .requiredOption('--file <file>', 'the new policy document, JSON')
    .option('--no-default', 'keep the current default version in force')
    .action(
      action(async (out, options, name: string) => {
        const document = await jsonFile(String(options.file));
        const makeDefault = options.default !== false;
        const updated = await perform(options, (context, actor) => context.policies.update(name, document, actor, { makeDefault }), (client) => client.call<StoredPolicy>('PUT', `/api/v1/policies/${segment(name)}`, { document, makeDefault }));
        out.result(updated, (p) => `Policy ${p.name}: version ${p.latestVersion} added; version ${p.defaultVersion} in force`);
      }),
    );

  withJson(withConfigFlags(policies.command('get')))
    .description('show a policy: its version in force, or --version N')
    .argument('<name>')
    .option('--version <n>', 'a specific version')
    .action(
      action(async (out, options, name: string) => {
        const version = positiveInteger(options.version, '--version', Number.MAX_SAFE_INTEGER);
        if (version !== undefined) {
          const shown = await perform(options, (context) => context.policies.version(name, version), (client) => client.call<StoredPolicyVersion>('GET', `/api/v1/policies/${segment(name)}/versions/${version}`));
          out.result(shown, (v) => `${v.policy} version ${v.version}${v.isDefault ? ' (in force)' : ''}, by ${v.createdBy} at ${v.createdAt}\n${serializePolicy(v.document, 2)}`);
          return;
        }
        const shown = await perform(options, (context) => context.policies.get(name), (client) => client.call<StoredPolicy>('GET', `/api/v1/policies/${segment(name)}`));
        out.result(shown, (p) => `${p.name} version ${p.defaultVersion} in force (latest ${p.latestVersion}), attached ${p.attachments} time(s)${p.isDefaultDevicePolicy ? '; the default device policy' : ''}\n${serializePolicy(p.document, 2)}`);
      }),
    );

  withJson(withConfigFlags(policies.command('list')))
    .description('list policies')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => context.policies.list(), async (client) => (await client.call<{ policies: StoredPolicy[] }>('GET', '/api/v1/policies')).policies);
        out.result({ policies: list }, (r) =>
          table(['policy', 'in force', 'latest', 'attached', 'statements'], r.policies.map((p) => [p.name + (p.isDefaultDevicePolicy ? ' (default)' : ''), String(p.defaultVersion), String(p.latestVersion), String(p.attachments), String(p.document.statements.length)])),
        );
      }),
    );

  withJson(withConfigFlags(policies.command('versions')))
    .description("list a policy's versions, newest first; --set-default N puts version N in force (a rollback)")
    .argument('<name>')
    .option('--set-default <n>', 'put this version in force')
    .action(
      action(async (out, options, name: string) => {
        const setDefault = positiveInteger(options.setDefault, '--set-default', Number.MAX_SAFE_INTEGER);
        const versions = await perform(
          options,
          async (context, actor) => {
            if (setDefault !== undefined) await context.policies.setDefaultVersion(name, setDefault, actor);
            return context.policies.versions(name);
          },
          async (client) => {
            if (setDefault !== undefined) await client.call<StoredPolicy>('PUT', `/api/v1/policies/${segment(name)}/default-version`, { version: setDefault });
            return (await client.call<{ versions: StoredPolicyVersion[] }>('GET', `/api/v1/policies/${segment(name)}/versions`)).versions;
          },
        );
        out.result({ versions }, (r) => table(['version', 'in force', 'created', 'by', 'statements'], r.versions.map((v) => [String(v.version), v.isDefault ? 'yes' : '', v.createdAt, v.createdBy, String(v.document.statements.length)])));
      }),
    );

  withJson(withConfigFlags(policies.command('delete')))
    .description('delete a policy and its versions; refused while attached unless --force (which detaches it everywhere)')
    .argument('<name>')
    .option('--force', 'detach it everywhere first')
    .action(
      action(async (out, options, name: string) => {
        const force = options.force === true;
        const result = await perform(options, (context, actor) => context.policies.delete(name, actor, { force }), (client) => client.call<{ detached: PolicyAttachment[] }>('DELETE', `/api/v1/policies/${segment(name)}${query({ force: force || undefined })}`));
        out.result(result, (r) => `Deleted policy ${name}${r.detached.length > 0 ? ` (detached from ${r.detached.length} target(s))` : ''}`);
      }),
    );

  for (const verb of ['attach', 'detach'] as const) {
    withJson(withConfigFlags(policies.command(verb)))
      .description(`${verb} a policy ${verb === 'attach' ? 'to' : 'from'} a thing, a group (and the groups below it) or a device certificate`)
      .argument('<name>')
      .option('--thing <thing>', 'a thing')
      .option('--group <group>', 'a group')
      .option('--cert <serial>', 'a device certificate, by serial')
      .action(
        action(async (out, options, name: string) => {
          const target = targetOf(options);
          const path = `/api/v1/policies/${segment(name)}/attachments/${target.kind}/${segment(target.name)}`;
          const attachment = await perform(
            options,
            (context, actor) => (verb === 'attach' ? context.policies.attach(name, target, actor) : context.policies.detach(name, target, actor)),
            async (client) => (verb === 'attach' ? client.call<PolicyAttachment>('PUT', path) : (await client.call<{ detached: PolicyAttachment }>('DELETE', path)).detached),
          );
          out.result(attachment, (a) => `${verb === 'attach' ? 'Attached' : 'Detached'} ${a.policy} ${verb === 'attach' ? 'to' : 'from'} ${a.target.kind} ${a.target.name}`);
        }),
      );
  }

  withJson(withConfigFlags(policies.command('simulate')))
    .description('decide one request for a thing with its policies, as the gateway would; exit 0 allowed, 1 denied')
    .requiredOption('--thing <thing>', 'the thing')
    .requiredOption('--action <action>', 'mqtt:connect, mqtt:publish, mqtt:subscribe, mqtt:receive or mqtt:retain')
    .requiredOption('--resource <resource>', 'the client id (connect), topic filter (subscribe) or topic name')
    .option('--source <address>', 'the source address it connects from')
    .option('--cert <serial>', "the certificate it connects with (default: its newest active one)")
    .action(
      action(async (out, options) => {
        const request = { thing: String(options.thing), action: String(options.action), resource: String(options.resource) };
        const source = optionalString(options.source);
        const cert = optionalString(options.cert);
        const simulation = await perform(
          options,
          (context) => context.policies.simulate({ ...request, ...(source !== undefined && { sourceAddress: source }), ...(cert !== undefined && { certificate: cert }) }),
          (client) => client.call<Simulation>('POST', '/api/v1/policies/simulate', { ...request, ...(source !== undefined && { source }), ...(cert !== undefined && { certificate: cert }) }),
        );
        out.result(simulation, describeSimulation);
        // Like test(1): scripts can branch on the answer; errors print an FW_ERR_ code.
        if (simulation.decision === 'deny') process.exitCode = 1;
      }),
    );

  withJson(withConfigFlags(policies.command('analyze')))
    .description('find least-privilege violations across policies, attachments and things')
    .option('--days <n>', 'report connect permissions unused for this many days (default 30)')
    .action(
      action(async (out, options) => {
        const days = positiveInteger(options.days, '--days', 365);
        const analysis = await perform(options, (context) => context.policies.analyze(days === undefined ? {} : { unusedDays: days }), (client) => client.call<FleetAnalysis>('GET', `/api/v1/policies/analyze${query({ days })}`));
        out.result(analysis, describeAnalysis);
      }),
    );

  withJson(withConfigFlags(policies.command('import-aws')))
    .description('create a policy from an AWS IoT policy document, translated exactly or refused')
    .requiredOption('--name <name>', 'the new policy name')
    .requiredOption('--file <file>', 'the AWS IoT policy document, JSON')
    .option('--region <region>', 'the AWS region its ARNs must name')
    .option('--account <account>', 'the AWS account its ARNs must name')
    .option('--expand-wildcard-actions', 'translate iot:* and * to the five MQTT actions')
    .action(
      action(async (out, options) => {
        const name = String(options.name);
        const document = await jsonFile(String(options.file));
        const region = optionalString(options.region);
        const account = optionalString(options.account);
        const importOptions = { ...(region !== undefined && { region }), ...(account !== undefined && { account }), ...(options.expandWildcardActions === true && { expandWildcardActions: true }) };
        const created = await perform(options, (context, actor) => context.policies.importAws(name, document, importOptions, actor), (client) => client.call<StoredPolicy>('POST', '/api/v1/policies/import-aws', { name, document, ...importOptions }));
        out.result(created, (p) => `Imported policy ${p.name} (${p.document.statements.length} statement(s))\n${serializePolicy(p.document, 2)}`);
      }),
    );
}

function describeSimulation(s: Simulation): string {
  const ref = (r: { policy: string; version: number; index: number; sid: string | null }) => `${r.policy} v${r.version} #${r.index}${r.sid === null ? '' : ` (${r.sid})`}`;
  return [
    `${s.decision === 'allow' ? 'allowed' : 'denied'}: ${s.description}`,
    ...(s.statement === null ? [] : [`  deciding statement: ${ref(s.statement)} ${s.statement.effect}`]),
    `  policies: ${s.policies.map((p) => `${p.name} v${p.version} via ${p.via === null ? 'default' : `${p.via.kind} ${p.via.name}`}`).join(', ') || '(none)'}${s.certificate === null ? '' : `; certificate ${s.certificate}`}`,
    ...s.statements.map((t) => `  ${ref({ ...t.statement, version: t.version })}  ${t.effect}  ${t.outcome}  ${t.resources.join(', ')}`),
  ].join('\n');
}

function describeAnalysis(a: FleetAnalysis): string {
  if (a.findings.length === 0) return `No findings (${a.things} things).`;
  return [
    table(['severity', 'code', 'policy', 'statement', 'resource', 'things', 'message'], a.findings.map((f) => [f.severity, f.code, f.policy, f.statement === null ? '-' : `#${f.statement.index}${f.statement.sid === null ? '' : ` ${f.statement.sid}`}`, f.resource ?? '-', String(f.thingCount), f.message])),
    `(unused-action judged for ${a.usageJudged.join(', ')} over ${a.unusedDays} days: the audit trail records connects, not each publish or subscribe)`,
  ].join('\n');
}
