import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

const DASHBOARD = new URL('../../../../docs/grafana/fleetward-dashboard.json', import.meta.url);

/** The Grafana dashboard in docs/ only queries metrics a node serves (a renamed metric breaks this test, not a dashboard in production). */
describe('Grafana dashboard', () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode('sqlite');
  });
  afterAll(async () => {
    await t.close();
  });

  it('queries only metrics the node registers', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const served = new Set((await t.node.context.metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    const queried = dashboard.panels.flatMap((p) => p.targets.flatMap((target) => [...target.expr.matchAll(/fleetward_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, ''))));
    expect(queried.length).toBeGreaterThan(20);
    expect(queried.filter((name) => !served.has(name))).toEqual([]);
  });
});
