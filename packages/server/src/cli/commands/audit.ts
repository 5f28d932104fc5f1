import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import { action, withJson } from '../action.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import type { AuditRecord } from '../../audit/audit-events.js';
import type { AuditVerification } from '../../audit/audit-log.js';
import { perform, query } from '../target.js';

export function auditCommand(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');

  withJson(withConfigFlags(audit.command('verify')))
    .description('walk the hash chain; exit 1 and name the first bad event if anything was modified, deleted, reordered or truncated')
    .action(
      action(async (out, options) => {
        const result = await perform(options, (context, actor) => context.audit.verifyAs(actor), (client) => client.call<AuditVerification>('GET', '/api/v1/audit/verification'));
        out.result(result, (r) =>
          r.ok ? `Audit trail intact: ${r.checked} events verified (head ${r.head?.seq ?? 0})` : `Audit trail BROKEN at event ${r.firstBreak?.seq}: ${r.firstBreak?.message} (${r.firstBreak?.kind})`,
        );
        if (!result.ok) process.exitCode = 1;
      }),
    );

  withJson(withConfigFlags(audit.command('events')))
    .description('list audit events in order')
    .option('--after <seq>', 'only events after this sequence number', '0')
    .option('--limit <n>', 'at most this many events (1-1000)', '50')
    .option('--action <action>', 'only events of this action (e.g. auth.failure)')
    .action(
      action(async (out, options) => {
        const after = Number(options.after);
        const limit = Number(options.limit);
        if (!Number.isInteger(after) || after < 0) throw new FleetwardError('FW_ERR_USAGE', '--after must be a sequence number');
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new FleetwardError('FW_ERR_USAGE', '--limit must be between 1 and 1000');
        const action = typeof options.action === 'string' ? options.action : undefined;
        const page = await perform(
          options,
          async (context) => {
            const events = await context.audit.list({ limit, afterSeq: after, ...(action !== undefined && { action }) });
            return { events, next: events.length === limit ? (events.at(-1)?.seq ?? null) : null };
          },
          (client) => client.call<{ events: AuditRecord[]; next: number | null }>('GET', `/api/v1/audit/events${query({ after, limit, action })}`),
        );
        out.result(page, (r) =>
          r.events.length === 0
            ? 'No events.'
            : table(['seq', 'time', 'actor', 'action', 'outcome', 'target', 'source'], r.events.map((e) => [String(e.seq), e.ts, e.actor, e.action, e.outcome, e.target ?? '-', e.source ?? '-'])),
        );
      }),
    );
}
