import { ROLES } from '../access/roles.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import { clearanceAllows, type Classification, type DataGrants } from './classification.js';
import { THING_VARIABLE, type DataContract, type FieldSpec, type Transform } from './contract.js';
import type { DataContracts } from './data-contracts.js';
import type { DataWebhook } from './data-webhooks.js';
import { discloses } from './disclosure.js';
import { describeRetention } from './retention.js';

export interface InventoryField {
  readonly path: string;
  readonly classification: Classification;
  readonly purposes: readonly string[];
  readonly transform: string;
  readonly retention: string;
  readonly storage: string;
  readonly readers: readonly string[];
}

export interface InventoryContract {
  readonly contract: string;
  readonly version: number;
  readonly thingType: string | null;
  readonly topic: string;
  readonly description: string;
  readonly fields: readonly InventoryField[];
}

export interface UnclassifiedTopic {
  readonly thingType: string | null;
  readonly topic: string;
  readonly outcome: string;
  readonly count: number;
  readonly firstSeenAt: string;
  readonly lastSeenAt: string;
}

export interface UnreadField {
  readonly contract: string;
  readonly field: string;
  readonly classification: Classification;
  readonly purposes: readonly string[];
  readonly lastReadAt: string | null;
}

/** A record of processing: what is collected, why, how long, where, and who can read it. */
export interface Inventory {
  readonly generatedAt: string;
  readonly storage: string;
  readonly unreadDays: number;
  readonly contracts: readonly InventoryContract[];
  readonly unclassified: readonly UnclassifiedTopic[];
  readonly unread: readonly UnreadField[];
}

export interface InventoryFacts {
  readonly now: Date;
  readonly storage: string;
  readonly unreadDays: number;
  readonly grants: DataGrants;
  readonly contracts: readonly DataContract[];
  readonly unclassified: readonly UnclassifiedTopic[];
  /** Last read of each `contract\0field` for any purpose. */
  readonly lastReads: ReadonlyMap<string, string>;
  /** Webhook consumers of the minimized stream (data-webhooks.ts): readers too. */
  readonly consumers: readonly Pick<DataWebhook, 'name' | 'contract' | 'topic' | 'purpose' | 'role' | 'state'>[];
}

/** Builds the inventory from facts. Pure. */
export function buildInventory(facts: InventoryFacts): Inventory {
  const cutoff = new Date(facts.now.getTime() - facts.unreadDays * 86_400_000).toISOString();
  const unread: UnreadField[] = [];
  const contracts = facts.contracts.map((c) => ({
    contract: c.name,
    version: c.version,
    thingType: c.thingType,
    topic: c.topic,
    description: c.description,
    fields: c.fields.map((f) => {
      const collected = f.transform.kind !== 'drop';
      if (collected) {
        const lastReadAt = facts.lastReads.get(`${c.name}\0${f.path}`) ?? null;
        if (lastReadAt === null || lastReadAt < cutoff) unread.push({ contract: c.name, field: f.path, classification: f.classification, purposes: f.purposes, lastReadAt });
      }
      return {
        path: f.path,
        classification: f.classification,
        purposes: f.purposes,
        transform: describeTransform(f.transform),
        retention: collected ? describeRetention(f.retentionSeconds) : '-',
        storage: collected ? `telemetry store (${facts.storage})${f.transform.kind === 'tokenize' ? ' + token vault (sealed)' : ''}` : 'not stored, not delivered',
        readers: collected ? [...readersOf(f.classification, f.transform, facts.grants), ...consumersOf(c, f, facts)] : [],
      };
    }),
  }));
  return { generatedAt: facts.now.toISOString(), storage: facts.storage, unreadDays: facts.unreadDays, contracts, unclassified: facts.unclassified, unread };
}

function describeTransform(t: Transform): string {
  switch (t.kind) {
    case 'keep':
    case 'drop':
    case 'tokenize':
      return t.kind;
    case 'pseudonymize':
      return `pseudonymize (HMAC-SHA-256, domain ${t.domain})`;
    case 'round':
      return `round to ${t.decimals} decimals`;
    case 'bucket':
      return `bucket by ${t.size}`;
    case 'time-bucket':
      return `time bucket ${describeRetention(t.seconds)}`;
    case 'truncate':
      return `truncate to ${t.length} characters`;
    case 'encrypt':
      return `encrypt to recipient key ${t.kid}`;
  }
}

function readersOf(classification: Classification, transform: Transform, grants: DataGrants): string[] {
  const roles = ROLES.filter((role) => clearanceAllows(grants, role, classification)).map((role) => `role ${role} (query, for a declared purpose)`);
  if (transform.kind === 'tokenize') roles.push(`original value: roles ${grants.detokenize.join(', ')} (detokenize, audited)`);
  if (transform.kind === 'encrypt') roles.push(`clear value: holder of private key ${transform.kid} only`);
  roles.push('MQTT subscribers their policy allows (minimized value)');
  return roles;
}

/** The webhook consumers sent this field: their selector can cover the contract's topic, and their purpose and role disclose it. */
function consumersOf(contract: DataContract, field: FieldSpec, facts: InventoryFacts): string[] {
  return facts.consumers
    .filter((w) => (w.contract === null || w.contract === contract.name) && (w.topic === null || filtersOverlap(w.topic, contract.topic)) && discloses(field, w.purpose, w.role, facts.grants))
    .map((w) => `webhook ${w.name} (purpose ${w.purpose}, role ${w.role}${w.state === 'active' ? '' : `, ${w.state}`})`);
}

/**
 * Whether some topic matches both filters (MQTT wildcards; the contract's thing variable stands
 * for any one level). Erring towards yes: the inventory may name a reader that gets nothing, never
 * omit one that gets data.
 */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return false;
    if (p !== q && p !== '+' && q !== '+' && p !== THING_VARIABLE && q !== THING_VARIABLE) return false;
  }
  return true;
}

/** Gathers the inventory's facts from the store. */
export async function collectInventory(
  deps: { readonly store: Store; readonly clock: Clock; readonly contracts: DataContracts; readonly grants: DataGrants; readonly consumers: () => Promise<InventoryFacts['consumers']> },
  unreadDays: number,
): Promise<Inventory> {
  const { db } = deps.store;
  const unclassified = (await db.selectFrom('data_unclassified').selectAll().orderBy('count', 'desc').limit(500).execute()).map((r) => ({
    thingType: r.thing_type === '' ? null : r.thing_type,
    topic: r.topic,
    outcome: r.outcome,
    count: Number(r.count),
    firstSeenAt: r.first_seen_at,
    lastSeenAt: r.last_seen_at,
  }));
  const reads = await db.selectFrom('data_field_reads').select(['contract', 'field', (eb) => eb.fn.max('last_read_at').as('last')]).groupBy(['contract', 'field']).execute();
  return buildInventory({
    now: deps.clock.now(),
    storage: deps.store.dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL',
    unreadDays,
    grants: deps.grants,
    contracts: await deps.contracts.active(),
    unclassified,
    lastReads: new Map(reads.map((r) => [`${r.contract}\0${r.field}`, String(r.last)])),
    consumers: await deps.consumers(),
  });
}

/** The inventory as Markdown, for a privacy officer. */
export function inventoryMarkdown(inventory: Inventory): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const lines = [`# Fleetward data inventory`, '', `Generated ${inventory.generatedAt}. Storage: ${inventory.storage}.`, ''];
  if (inventory.contracts.length === 0) lines.push('No data contracts: no application data is collected unless unmatched topics pass.', '');
  for (const c of inventory.contracts) {
    lines.push(`## ${c.thingType ?? 'any thing type'} — \`${c.topic}\``, '', `Contract \`${c.contract}\` version ${c.version}${c.description ? `: ${c.description}` : ''}`, '');
    lines.push('| field | class | purposes | transform | retention | storage | readers |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const f of c.fields) lines.push(`| \`${f.path}\` | ${f.classification} | ${f.purposes.join(', ')} | ${cell(f.transform)} | ${f.retention} | ${cell(f.storage)} | ${cell(f.readers.join('; ') || '-')} |`);
    lines.push('');
  }
  lines.push('## Collected without a contract', '');
  if (inventory.unclassified.length === 0) lines.push('None.', '');
  else {
    lines.push('| thing type | topic | outcome | messages | first seen | last seen |', '| --- | --- | --- | --- | --- | --- |');
    for (const u of inventory.unclassified) lines.push(`| ${u.thingType ?? '-'} | \`${cell(u.topic)}\` | ${u.outcome} | ${u.count} | ${u.firstSeenAt} | ${u.lastSeenAt} |`);
    lines.push('');
  }
  lines.push(`## Fields no purpose has read in ${inventory.unreadDays} days (candidates to stop collecting)`, '');
  if (inventory.unread.length === 0) lines.push('None.', '');
  else {
    lines.push('| contract | field | class | purposes | last read |', '| --- | --- | --- | --- | --- |');
    for (const u of inventory.unread) lines.push(`| ${u.contract} | \`${u.field}\` | ${u.classification} | ${u.purposes.join(', ')} | ${u.lastReadAt ?? 'never'} |`);
    lines.push('');
  }
  return lines.join('\n');
}
