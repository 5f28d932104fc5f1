import { readFileSync } from 'node:fs';
import { topicFilterMatches } from '@fleetward/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DATA_GRANTS } from '../../src/data/classification.js';
import { parseContract, type FieldSpec } from '../../src/data/contract.js';
import { assembleBatch, type ConsumerView } from '../../src/data/data-webhook-batch.js';
import type { FeedRow } from '../../src/data/data-webhook-feed.js';
import { filtersOverlap } from '../../src/data/data-inventory.js';

// The pure core of data webhook delivery: feed rows in, one batch of purpose-filtered records out.

const contract = parseContract({
  name: 'env',
  version: 1,
  topic: 'things/${thing.name}/env',
  retention: 'P30D',
  schema: { type: 'object', required: ['temp'], properties: { temp: { type: 'number' }, mac: { type: 'string', maxLength: 17 }, owner: { type: 'string', maxLength: 64 } } },
  fields: {
    temp: { class: 'internal', purposes: ['monitoring'] },
    mac: { class: 'personal', purposes: ['maintenance', 'monitoring'], retention: 'P7D' },
    owner: { class: 'sensitive', purposes: ['monitoring'] },
  },
});
const specs = new Map<string, FieldSpec>(contract.fields.map((f) => [f.path, f]));
const specsOf = (name: string, version: number) => (name === 'env' && version === 1 ? specs : new Map<string, FieldSpec>());
const unlimited = { maxMessages: 1000, maxBytes: 1_000_000 };
const view = (overrides: Partial<ConsumerView> = {}): ConsumerView => ({ contract: null, topic: null, purpose: 'monitoring', role: 'operator', ...overrides });

let nextId = 0;
/** One message as the store holds it: a row per retention group, adjacent ids. */
function message(id: string, groups: readonly Record<string, unknown>[], where: { thing?: string; contract?: string } = {}): FeedRow[] {
  const thing = where.thing ?? 't-1';
  return groups.map((fields) => ({ position: { txid: 0, id: ++nextId }, messageId: id, thing, topic: `things/${thing}/env`, contract: where.contract ?? 'env', version: 1, receivedAt: '2026-11-25T12:00:00.000Z', fields: JSON.stringify(fields) }));
}

describe('assembling a data webhook batch', () => {
  it('merges a message\'s groups and sends only fields declared for the purpose within the clearance', () => {
    const rows = message('m1', [{ temp: 20, owner: 'tk_x' }, { mac: 'ps_y' }]);
    const batch = assembleBatch(rows, false, view(), specsOf, DEFAULT_DATA_GRANTS, unlimited);
    // An operator's clearance is personal: the sensitive owner is withheld.
    expect(batch.records.map((r) => r.fields)).toEqual([{ temp: 20, mac: 'ps_y' }]);
    expect([...batch.disclosed.values()].map((s) => `${s.contract}/${s.path}:${s.classification}`).sort()).toEqual(['env/mac:personal', 'env/temp:internal']);
    expect(batch.end).toEqual(rows[1]?.position);
    expect(assembleBatch(rows, false, view({ role: 'admin' }), specsOf, DEFAULT_DATA_GRANTS, unlimited).records[0]?.fields).toEqual({ temp: 20, owner: 'tk_x', mac: 'ps_y' });
  });

  it('skips, but moves past, messages outside the selector or with nothing for the purpose', () => {
    const rows = [...message('other-contract', [{ temp: 1 }], { contract: 'other' }), ...message('other-thing', [{ temp: 2 }], { thing: 't-2' }), ...message('nothing', [{ temp: 3 }])];
    const selected = assembleBatch(rows, false, view({ contract: 'env', topic: 'things/t-2/#' }), specsOf, DEFAULT_DATA_GRANTS, unlimited);
    expect(selected.records.map((r) => r.messageId)).toEqual(['other-thing']);
    expect(selected.end).toEqual(rows[2]?.position);
    // A viewer reads public fields only: a message without any is not sent at all, not even as empty.
    const none = assembleBatch(rows, false, view({ role: 'viewer' }), specsOf, DEFAULT_DATA_GRANTS, unlimited);
    expect(none.records).toEqual([]);
    expect(none.end).toEqual(rows[2]?.position);
    expect(assembleBatch([], false, view(), specsOf, DEFAULT_DATA_GRANTS, unlimited).end).toBeNull();
  });

  it('stops before a message that breaks a limit, ending after the last message it took; one message always fits', () => {
    const rows = [...message('a', [{ temp: 1 }]), ...message('b', [{ temp: 2 }]), ...message('c', [{ temp: 3 }])];
    const two = assembleBatch(rows, false, view(), specsOf, DEFAULT_DATA_GRANTS, { maxMessages: 2, maxBytes: 1_000_000 });
    expect(two.records.map((r) => r.messageId)).toEqual(['a', 'b']);
    expect(two.end).toEqual(rows[1]?.position);
    const tiny = assembleBatch(rows, false, view(), specsOf, DEFAULT_DATA_GRANTS, { maxMessages: 100, maxBytes: 1 });
    expect(tiny.records.map((r) => r.messageId)).toEqual(['a']);
    expect(tiny.end).toEqual(rows[0]?.position);
  });

  it('leaves a message the read may have cut for the next read', () => {
    const rows = [...message('a', [{ temp: 1 }]), ...message('b', [{ temp: 2 }, { mac: 'ps_1' }]).slice(0, 1)];
    const batch = assembleBatch(rows, true, view(), specsOf, DEFAULT_DATA_GRANTS, unlimited);
    expect(batch.records.map((r) => r.messageId)).toEqual(['a']);
    expect(batch.end).toEqual(rows[0]?.position);
  });

  it('ok/the webhook example in docs/rule-09-data.md is what its consumer receives of the documented message', () => {
    const doc = readFileSync(new URL('../../../../docs/rule-09-data.md', import.meta.url), 'utf8');
    const block = (tag: string) => JSON.parse([...doc.matchAll(new RegExp(`\`\`\`json ${tag}\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1] as string)[0] as string) as Record<string, unknown>;
    const example = parseContract(block('contract'));
    const stored = block('delivered');
    const webhook = block('webhook') as { purpose: string; records: { fields: Record<string, unknown> }[] };
    const exampleSpecs = new Map<string, FieldSpec>(example.fields.map((f) => [f.path, f]));
    const rows = message('m', [stored]).map((r) => ({ ...r, contract: example.name, version: example.version }));
    const batch = assembleBatch(rows, false, view({ purpose: webhook.purpose, role: 'operator', contract: example.name }), () => exampleSpecs, DEFAULT_DATA_GRANTS, unlimited);
    expect(batch.records.map((r) => r.fields)).toEqual(webhook.records.map((r) => r.fields));
  });
});

describe('the inventory names webhook readers by topic overlap (property)', () => {
  const level = fc.constantFrom('a', 'b', '+', '${thing.name}');
  const filter = fc.tuple(fc.array(level, { minLength: 1, maxLength: 3 }), fc.boolean()).map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));
  // Every topic of up to 4 levels over the names the filters use, plus one they do not.
  const topics = [1, 2, 3, 4].flatMap((n) => Array.from({ length: 3 ** n }, (_, i) => Array.from({ length: n }, (__, k) => ['a', 'b', 'z'][Math.floor(i / 3 ** k) % 3]).join('/')));
  const asMqtt = (f: string) => f.replaceAll('${thing.name}', '+');

  it('two filters overlap exactly when some topic matches both (the thing variable matches any one level)', () => {
    fc.assert(
      fc.property(filter, filter, (x, y) => {
        const both = topics.some((t) => topicFilterMatches(asMqtt(x), t) && topicFilterMatches(asMqtt(y), t));
        expect(filtersOverlap(x, y)).toBe(both);
      }),
      { numRuns: 500 },
    );
  });
});
