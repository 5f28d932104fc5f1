import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { compilePolicies, DEFAULT_DEVICE_POLICY, importAwsIotPolicy, parsePolicyDocument, serializePolicy } from '../../src/access/policy/index.js';

const page = await readFile(new URL('../../../../docs/policies.md', import.meta.url), 'utf8');
const jsonBlocks = [...page.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] as string);

describe('docs/policies.md stays true', () => {
  it('every policy document on the page is valid, and the default device policy is the one shipped', () => {
    const documents = jsonBlocks.filter((b) => b.includes('"2026-11"')).map((b) => JSON.parse(b) as unknown);
    expect(documents.length).toBeGreaterThanOrEqual(3);
    for (const document of documents) parsePolicyDocument(document);
    expect(documents.map((d) => serializePolicy(parsePolicyDocument(d)))).toContain(serializePolicy(DEFAULT_DEVICE_POLICY));
  });

  it('the AWS worked example imports to exactly what the page shows', () => {
    const index = jsonBlocks.findIndex((b) => b.includes('"2012-10-17"'));
    const imported = importAwsIotPolicy(JSON.parse(jsonBlocks[index] as string));
    expect(JSON.parse(serializePolicy(imported))).toEqual(JSON.parse(jsonBlocks[index + 1] as string));
  });

  it('the subscribe examples decide as the table says', () => {
    const rows = [...page.matchAll(/^\|\s*(`[^|]*`(?: and `[^|]*`)?)\s*\|\s*((?:`[^|]*`)?)\s*\|\s*(`[^|]*`(?:, `[^|]*`)*)\s*\|\s*(allowed|denied)/gm)];
    expect(rows.length).toBeGreaterThanOrEqual(8);
    const ticks = (cell: string) => [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1] as string);
    for (const [, allow = '', deny = '', filters = '', decision] of rows) {
      const statements = [
        { effect: 'allow', actions: ['mqtt:subscribe'], resources: ticks(allow).map((p) => `topic/${p}`) },
        ...(ticks(deny).length > 0 ? [{ effect: 'deny', actions: ['mqtt:subscribe'], resources: ticks(deny).map((p) => `topic/${p}`) }] : []),
      ];
      const compiled = compilePolicies([{ name: 'p', document: parsePolicyDocument({ version: '2026-11', statements }) }], {});
      for (const filter of ticks(filters)) expect(compiled.allows('mqtt:subscribe', filter), `${allow} / ${deny} / ${filter}`).toBe(decision === 'allowed');
    }
  });
});
