import { Option, type Command } from 'commander';
import { FINDING_KINDS, FINDING_SEVERITIES, type FindingSeverity } from '../../identity/credential-audit/checks.js';
import type { CredentialReport, FindingFilter } from '../../identity/credential-audit/credential-audit.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { perform, query } from '../target.js';

/** `fleetward certs audit`: the credential audit, run now (default) or as last stored. */
export function credentialAuditCommand(certs: Command): void {
  withJson(withConfigFlags(certs.command('audit')))
    .description('audit every credential now: expiring certificates and CAs, never-used, of inactive things, weak keys, shared, spare, not in hardware')
    .option('--stored', 'show the last stored report (kept current on lifecycle changes) instead of running one')
    .addOption(new Option('--kind <kind>', 'only findings of this kind').choices(FINDING_KINDS))
    .addOption(new Option('--severity <severity>', 'only findings of this severity').choices(FINDING_SEVERITIES))
    .option('--thing <name>', "only this thing's findings")
    .option('--limit <n>', 'at most this many findings', '1000')
    .addOption(new Option('--fail-on <severity>', 'exit 1 when a finding of this severity or worse is reported').choices(FINDING_SEVERITIES))
    .action(
      action(async (out, options) => {
        const kind = optionalString(options.kind) as FindingFilter['kind'];
        const severity = optionalString(options.severity) as FindingFilter['severity'];
        const thing = optionalString(options.thing);
        const filter: FindingFilter = { limit: positiveInteger(options.limit, '--limit', 10_000) as number, ...(kind && { kind }), ...(severity && { severity }), ...(thing !== undefined && { thing }) };
        const run = options.stored !== true;
        const report = await perform(
          options,
          async (context, actor) => {
            if (run) await context.identity.credentialAudit.run('operator', actor);
            return context.identity.credentialAudit.report(filter);
          },
          async (client) => {
            if (run) await client.call<CredentialReport>('POST', '/api/v1/credential-audit/run');
            return client.call<CredentialReport>('GET', `/api/v1/credential-audit${query({ ...filter })}`);
          },
        );
        out.result(report, describe);
        const failOn = optionalString(options.failOn) as FindingSeverity | undefined;
        if (failOn !== undefined && FINDING_SEVERITIES.slice(0, FINDING_SEVERITIES.indexOf(failOn) + 1).some((s) => report.counts[s] > 0)) process.exitCode = 1;
      }),
    );
}

function describe(report: CredentialReport): string {
  const { high, medium, low } = report.counts;
  const heading = `Credential audit${report.ranAt === null ? ' (the fleet was never audited as a whole)' : ` of ${report.ranAt}`}: ${high} high, ${medium} medium, ${low} low`;
  if (report.findings.length === 0) return heading;
  return `${heading}\n${table(['severity', 'kind', 'thing', 'serial', 'finding'], report.findings.map((f) => [f.severity, f.kind, f.thing ?? '', f.serial ?? f.caId ?? '', f.message]))}`;
}
