import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import type { KeyObject } from 'node:crypto';
import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import { action, withJson } from '../action.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import type { AuditRecord } from '../../audit/audit-events.js';
import { trustedKey } from '../../audit/audit-checkpoint.js';
import { AuditCheckpoints, type AuditSigningKey, type AuditTrailVerification } from '../../audit/audit-checkpoints.js';
import { auditJsonLine, rfc5424 } from '../../audit/syslog-format.js';
import type { NodeContext } from '../../node.js';
import { perform, query } from '../target.js';

const EXPORT_PAGE = 1000;
const EXPORT_FORMATS = ['jsonl', 'rfc5424'] as const;

function checkpointsOf(context: NodeContext): AuditCheckpoints {
  return new AuditCheckpoints({ store: context.store, clock: context.clock, sealer: context.keyRing });
}

export function auditCommand(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');

  withJson(withConfigFlags(audit.command('verify')))
    .description('walk the hash chain and check every signed checkpoint; exit 1 and name the first bad event (or checkpoint) if anything was modified, deleted, reordered, truncated or re-chained')
    .option('--public-key <file>', 'trust only this audit public key (PEM, from `fleetward audit key`) instead of the keys sealed in the data folder')
    .action(
      action(async (out, options) => {
        const pinned = typeof options.publicKey === 'string' ? await pinnedKeys(options.publicKey) : undefined;
        const result = await perform(
          options,
          (context, actor) => checkpointsOf(context).verifyAs(context.audit, actor, pinned),
          async (client) => withPinnedKeys(await client.call<AuditTrailVerification>('GET', '/api/v1/audit/verification'), pinned),
        );
        out.result(result, describeVerification);
        if (!result.ok) process.exitCode = 1;
      }),
    );

  withJson(withConfigFlags(audit.command('key')))
    .description('print the public key(s) that sign audit checkpoints (PEM), for an external party to check them')
    .action(
      action(async (out, options) => {
        const keys = await perform(options, (context) => checkpointsOf(context).keys(), (client) => client.call<{ keys: AuditSigningKey[] }>('GET', '/api/v1/audit/keys').then((r) => r.keys));
        out.result({ keys }, (r) => (r.keys.length === 0 ? 'No audit signing key yet: a serving node creates one with its first checkpoint.' : r.keys.map((k) => `# key ${k.keyId} (${k.algorithm}, created ${k.createdAt})\n${k.publicKey.trim()}`).join('\n')));
      }),
    );

  withJson(withConfigFlags(audit.command('export')))
    .description('write audit events in order as JSON Lines (seq, hash, prevHash and every hashed field) or RFC 5424 syslog lines')
    .option('--format <format>', `output format: ${EXPORT_FORMATS.join(' or ')}`, 'jsonl')
    .option('--since <seq>', 'only events after this sequence number', '0')
    .option('--out <file>', 'write to this file (created 0600) instead of stdout')
    .action(
      action(async (out, options) => {
        const format = String(options.format);
        if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new FleetwardError('FW_ERR_USAGE', `--format must be one of ${EXPORT_FORMATS.join(', ')}`);
        const since = Number(options.since);
        if (!Number.isInteger(since) || since < 0) throw new FleetwardError('FW_ERR_USAGE', '--since must be a sequence number');
        const file = typeof options.out === 'string' ? options.out : null;
        const sink: NodeJS.WritableStream = file === null ? process.stdout : createWriteStream(file, { mode: 0o600, flags: 'w' });
        const origin = { hostname: 'fleetward', appName: 'fleetward' };
        const line = format === 'jsonl' ? auditJsonLine : (e: AuditRecord) => rfc5424(e, origin);
        const summary = await perform(
          options,
          (context) => exportEvents(sink, line, since, (after) => context.audit.list({ afterSeq: after, limit: EXPORT_PAGE })),
          (client) => exportEvents(sink, line, since, async (after) => (await client.call<{ events: AuditRecord[] }>('GET', `/api/v1/audit/events${query({ after, limit: EXPORT_PAGE })}`)).events),
        );
        if (file !== null) {
          (sink as WriteStream).end();
          await once(sink, 'finish');
          out.result({ ...summary, file }, (r) => `Exported ${r.events} events (${r.first ?? '-'}..${r.last ?? '-'}) to ${r.file}`);
        } else {
          out.note(`Exported ${summary.events} events.`);
        }
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

export function describeVerification(r: AuditTrailVerification): string {
  const c = r.checkpoints;
  const latest = c.latest === null ? 'no checkpoint' : `latest checkpoint ${c.latest.number} at ${c.latest.ts} covers event ${c.latest.seq}; ${c.uncovered} newer event(s) protected by the chain only`;
  const keys = c.keys.length === 0 ? '' : `\nSigning key(s): ${c.keys.map((k) => k.keyId).join(', ')} (\`fleetward audit key\` prints them)`;
  const warnings = r.warnings.map((w) => `\nWarning: ${w}`).join('');
  if (!r.ok) {
    const b = r.firstBreak;
    const where = b?.checkpoint === undefined ? `event ${b?.seq}` : `event ${b.seq} (checkpoint ${b.checkpoint})`;
    return `Audit trail BROKEN at ${where}: ${b?.message} (${b?.kind})\nChecked ${r.checked} events and ${c.checked} checkpoints before it.${keys}`;
  }
  return `Audit trail intact: ${r.checked} events verified (head ${r.head?.seq ?? 0}), ${c.checked} signed checkpoints verified; ${latest}.${keys}${warnings}`;
}

async function pinnedKeys(file: string): Promise<ReadonlyMap<string, KeyObject>> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new FleetwardError('FW_ERR_USAGE', `cannot read ${file}`);
  });
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new FleetwardError('FW_ERR_USAGE', `${file} holds no PEM public key`);
  try {
    return new Map(blocks.map(trustedKey));
  } catch (error) {
    throw new FleetwardError('FW_ERR_USAGE', `${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Over the API the node checks signatures itself; with a pinned key we also insist it used only that key. */
function withPinnedKeys(result: AuditTrailVerification, pinned: ReadonlyMap<string, KeyObject> | undefined): AuditTrailVerification {
  if (pinned === undefined || !result.ok) return result;
  const foreign = result.checkpoints.keys.find((k) => !pinned.has(k.keyId));
  if (foreign === undefined) return result;
  return { ...result, ok: false, firstBreak: { kind: 'checkpoint-forged', seq: 0, message: `the node checked checkpoints with key ${foreign.keyId}, which is not the pinned key` } };
}

async function exportEvents(sink: NodeJS.WritableStream, line: (e: AuditRecord) => string, since: number, page: (after: number) => Promise<AuditRecord[]>): Promise<{ events: number; first: number | null; last: number | null }> {
  let after = since;
  let events = 0;
  let first: number | null = null;
  for (;;) {
    const rows = await page(after);
    if (rows.length === 0) break;
    first ??= (rows[0] as AuditRecord).seq;
    const chunk = `${rows.map(line).join('\n')}\n`;
    if (!sink.write(chunk)) await once(sink, 'drain');
    events += rows.length;
    after = (rows.at(-1) as AuditRecord).seq;
    if (rows.length < EXPORT_PAGE) break;
  }
  return { events, first, last: events === 0 ? null : after };
}
