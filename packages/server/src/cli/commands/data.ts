import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Role } from '../../access/roles.js';
import { FleetwardError, type SealingKey } from '@fleetward/protocol';
import type { AppliedContract, ContractSummary } from '../../data/data-contracts.js';
import type { Detokenized, QueryResult } from '../../data/data-access.js';
import { inventoryMarkdown, type Inventory } from '../../data/data-inventory.js';
import type { PurgeReport } from '../../data/data-retention.js';
import type { SealingKeyInfo } from '../../data/sealing-keys.js';
import type { JsonValue } from '../../json.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile } from '../files.js';
import { table } from '../output.js';
import { perform, query, segment } from '../target.js';
import { dataWebhooksCommand } from './data-webhooks.js';

/** Whoever can read the data folder holds its keys anyway: local commands read with an admin's clearance. */
const LOCAL_ROLE: Role = 'admin';
const MAX_CONTRACT_FILE_BYTES = 1_048_576;

/** `fleetward data ...`: rule 9, data minimization. */
export function dataCommand(program: Command): void {
  const data = program.command('data').description('data contracts, purpose-bound reads, erasure and the privacy inventory (rule 9)');
  const contracts = data.command('contracts').description('data contracts: what devices may send on which topic, classified, with purposes, retention and transforms');

  withJson(withConfigFlags(contracts.command('apply')))
    .description('apply contract documents from a JSON file or a folder of them (all or none; reviewable in git)')
    .argument('<path>', 'a .json file, or a folder whose .json files are each one contract')
    .action(
      action(async (out, options, path: string) => {
        const documents = await readContracts(path);
        const applied = await perform(options, async (context, actor) => context.data.contracts.apply(documents, actor), async (client) => (await client.call<{ applied: AppliedContract[] }>('POST', '/api/v1/data/contracts', { contracts: documents })).applied);
        out.result({ applied }, (r) => table(['contract', 'version', 'outcome'], r.applied.map((a) => [a.name, String(a.version), a.outcome])));
      }),
    );

  withJson(withConfigFlags(contracts.command('list')))
    .description('list the data contracts in force')
    .action(
      action(async (out, options) => {
        const list = await perform(options, async (context) => context.data.contracts.list(), async (client) => (await client.call<{ contracts: ContractSummary[] }>('GET', '/api/v1/data/contracts')).contracts);
        out.result({ contracts: list }, (r) => (r.contracts.length === 0 ? 'No data contracts: application data is refused (or passed unclassified, if so configured).' : table(['contract', 'version', 'thing type', 'topic', 'fields'], r.contracts.map((c) => [c.name, String(c.version), c.thingType ?? '*', c.topic, String(c.fields)]))));
      }),
    );

  withJson(withConfigFlags(contracts.command('show')))
    .description('print a data contract document')
    .argument('<name>')
    .option('--version <n>', 'this version (default: the one in force)')
    .action(
      action(async (out, options, name: string) => {
        const version = positiveInteger(options.version, '--version', 1_000_000);
        const shown = await perform(
          options,
          async (context) => context.data.contracts.get(name, version),
          (client) => client.call<{ summary: ContractSummary; document: JsonValue; versions: number[] }>('GET', `/api/v1/data/contracts/${segment(name)}${query({ version })}`),
        );
        out.result(shown, (r) => JSON.stringify(r.document, null, 2));
      }),
    );

  withJson(withConfigFlags(data.command('query')))
    .description("read a thing's stored data for a declared purpose: only fields declared for it, within your role's clearance (reads of personal data are audited)")
    .requiredOption('--thing <name>')
    .option('--purpose <purpose>', 'why you read it (required): one the contracts declare')
    .option('--since <date-time>', 'only data received at or after this ISO 8601 time')
    .option('--limit <n>', 'at most this many messages (default 100)')
    .action(
      action(async (out, options) => {
        const thing = String(options.thing);
        const purpose = optionalString(options.purpose);
        const since = optionalString(options.since);
        const limit = positiveInteger(options.limit, '--limit', 1000);
        const result = await perform(
          options,
          async (context, actor) => context.data.access.query({ thing, purpose, ...(since !== undefined && { since }), ...(limit !== undefined && { limit }) }, { actor, role: LOCAL_ROLE }),
          (client) => client.call<QueryResult>('GET', `/api/v1/data/things/${segment(thing)}${query({ purpose, since, limit })}`),
        );
        out.result(result, describeQuery);
      }),
    );

  withJson(withConfigFlags(data.command('detokenize')))
    .description('the original value behind a token (needs the detokenize grant; audited)')
    .argument('<token>', 'tk_...')
    .option('--purpose <purpose>', 'why (required): a purpose the token\'s field declares')
    .action(
      action(async (out, options, token: string) => {
        const purpose = optionalString(options.purpose);
        const result = await perform(
          options,
          async (context, actor) => context.data.access.detokenize(token, purpose, { actor, role: LOCAL_ROLE }),
          (client) => client.call<Detokenized>('POST', '/api/v1/data/detokenize', { token, ...(purpose !== undefined && { purpose }) }),
        );
        out.result(result, (r) => `${r.token} = ${JSON.stringify(r.value)}  (${r.thing}, ${r.contract}/${r.field})`);
      }),
    );

  withJson(withConfigFlags(data.command('purge')))
    .description("erase every stored row and token of one thing (right to erasure); prints the counts (audited)")
    .requiredOption('--thing <name>')
    .action(
      action(async (out, options) => {
        const thing = String(options.thing);
        const report = await perform(options, async (context, actor) => context.data.retention.purgeThing(thing, actor), (client) => client.call<PurgeReport>('POST', `/api/v1/data/things/${segment(thing)}/purge`));
        out.result(report, (r) => `Erased ${r.rows} stored row(s) and ${r.vaultEntries} token vault entr${r.vaultEntries === 1 ? 'y' : 'ies'} of ${r.thing}.`);
      }),
    );

  withJson(withConfigFlags(data.command('inventory')))
    .description('the privacy inventory (Markdown; --json for JSON): fields per thing type and topic, class, purposes, transform, retention, storage, readers; data without a contract; fields nobody reads')
    .option('--unread-days <n>', 'list fields no purpose has read in this many days (default 30)')
    .action(
      action(async (out, options) => {
        const days = positiveInteger(options.unreadDays, '--unread-days', 3650) ?? 30;
        const inventory = await perform(options, async (context) => context.data.inventory(days), (client) => client.call<Inventory>('GET', `/api/v1/data/inventory${query({ unreadDays: days })}`));
        out.result(inventory, inventoryMarkdown);
      }),
    );

  const sealingKey = data.command('sealing-key').description('the backend key devices seal local data to before upload; ingest opens it');

  withJson(withConfigFlags(sealingKey.command('show')))
    .description('print the current sealing key (what devices seal to) and the older keys ingest still opens with')
    .action(
      action(async (out, options) => {
        const shown = await perform(
          options,
          async (context) => ({ current: await context.data.sealing.current(), keys: await context.data.sealing.list() }),
          (client) => client.call<{ current: SealingKey; keys: SealingKeyInfo[] }>('GET', '/api/v1/data/sealing-key'),
        );
        out.result(shown, (r) => `${describeSealingKey(r.current)}\n\n${table(['key id', 'generation', 'created', 'state'], r.keys.map((k) => [k.keyId, String(k.generation), k.createdAt, k.active ? 'active' : 'opens only']))}`);
      }),
    );

  withJson(withConfigFlags(sealingKey.command('rotate')))
    .description('make a new sealing key active (admins; audited): devices seal to it once they fetch it, older keys keep opening what was sealed before')
    .action(
      action(async (out, options) => {
        const rotated = await perform(options, async (context, actor) => context.data.sealing.rotate(actor), (client) => client.call<{ previous: string | null; active: SealingKeyInfo }>('POST', '/api/v1/data/sealing-key/rotate'));
        out.result(rotated, (r) => `Rotated the sealing key: ${r.previous ?? '(none)'} -> ${r.active.keyId}.\n${describeSealingKey(r.active)}`);
      }),
    );

  dataWebhooksCommand(data, LOCAL_ROLE);
}

function describeSealingKey(key: SealingKey): string {
  return `Current sealing key ${key.keyId} (${key.alg})\npublic key (raw X25519, base64url): ${key.publicKey}`;
}

/** Contract documents from a file or a folder of .json files (sorted by name). */
async function readContracts(path: string): Promise<unknown[]> {
  const info = await stat(path).catch((error: Error) => {
    throw new FleetwardError('FW_ERR_USAGE', `cannot read ${path}: ${error.message}`);
  });
  const files = info.isDirectory() ? (await readdir(path)).filter((f) => f.endsWith('.json')).sort().map((f) => join(path, f)) : [path];
  if (files.length === 0) throw new FleetwardError('FW_ERR_USAGE', `${path} holds no .json contract files`);
  const documents: unknown[] = [];
  for (const file of files) {
    if ((await stat(file)).size > MAX_CONTRACT_FILE_BYTES) throw new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', `${file} is larger than ${MAX_CONTRACT_FILE_BYTES} bytes`, { file });
    const text = await readInputFile(file);
    try {
      documents.push(JSON.parse(text));
    } catch (error) {
      throw new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', `${file} is not JSON: ${(error as Error).message}`, { file });
    }
  }
  return documents;
}

function describeQuery(r: QueryResult): string {
  const lines = [`${r.rows.length} message(s) of ${r.thing} for purpose ${r.purpose}`];
  for (const row of r.rows) lines.push(`${row.receivedAt}  ${row.topic}  ${JSON.stringify(row.fields)}`);
  if (r.withheld.length > 0) lines.push(`withheld (not declared for ${r.purpose}, or above your clearance): ${r.withheld.join(', ')}`);
  return lines.join('\n');
}
