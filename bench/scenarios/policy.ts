import { performance } from 'node:perf_hooks';
import {
  compilePolicies,
  DEFAULT_DEVICE_POLICY,
  parsePolicyDocument,
  type ConnectionFacts,
  type NamedPolicy,
  type PolicyAction,
  type Statement,
} from '../../packages/server/src/access/policy/index.js';
import { progress, row, type Scenario } from '../lib/report.js';

const RUNS = 5;
const CACHED_DECISIONS = 5_000_000;
const UNCACHED_DECISIONS = 200_000;
const COMPILES = 2_000;
const DECISIONS_TARGET = 2_000_000;
const COMPILE_TARGET_US = 1_000;

/**
 * A 20-statement policy set as a fleet would attach it: the default device policy (2 statements) on
 * every thing, and a site policy (18 statements) with variables, conditions and denies.
 */
function policySet(): NamedPolicy[] {
  const site: Statement[] = [
    { sid: 'telemetry', effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/sites/${thing.attr.site}/telemetry/${thing.name}/#'] },
    { sid: 'state', effect: 'allow', actions: ['mqtt:publish', 'mqtt:retain'], resources: ['topic/things/${thing.name}/state'] },
    { sid: 'commands', effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/sites/${thing.attr.site}/commands/${thing.name}/#', 'topic/sites/${thing.attr.site}/broadcast/#'] },
    { sid: 'no-admin', effect: 'deny', actions: ['mqtt:publish', 'mqtt:subscribe'], resources: ['topic/things/${thing.name}/admin/#'] },
    { sid: 'office-only', effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/office/${thing.attr.floor}/+'], conditions: { sourceAddress: ['10.0.0.0/8', '2001:db8::/32'] } },
    { sid: 'gold', effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/premium/${thing.type}/#'], conditions: { thingAttributes: { tier: 'gold' } } },
    { sid: 'issuer', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${cert.cn}'], conditions: { certIssuer: ['CN=Fleetward Issuing CA'] } },
    { sid: 'blocked-net', effect: 'deny', actions: ['mqtt:connect'], resources: ['client/*'], conditions: { sourceAddress: ['192.0.2.0/24'] } },
    ...Array.from({ length: 10 }, (_, i): Statement => ({
      sid: `feature-${i}`,
      effect: i % 4 === 3 ? 'deny' : 'allow',
      actions: i % 2 === 0 ? ['mqtt:publish', 'mqtt:receive'] : ['mqtt:subscribe'],
      resources: [`topic/features/${i}/\${thing.name}/+/data`, `topic/features/${i}/shared/#`],
    })),
  ];
  return [
    { name: 'default', document: DEFAULT_DEVICE_POLICY },
    { name: 'site', document: parsePolicyDocument({ version: '2026-11', statements: site }) },
  ];
}

function factsFor(i: number): ConnectionFacts {
  return {
    thing: { name: `sensor-${i}`, type: 'thermostat', attributes: { site: `site-${i % 50}`, floor: String(i % 7), tier: i % 3 === 0 ? 'gold' : 'silver' } },
    cert: { cn: `sensor-${i}`, serial: i.toString(16).padStart(16, '0'), issuer: 'CN=Fleetward Issuing CA' },
    sourceAddress: `10.0.${(i >> 8) & 255}.${i & 255}`,
  };
}

/** What one connected device asks, over and over: its telemetry topics, deliveries, resubscriptions. */
function requestsFor(name: string, site: string): [PolicyAction, string][] {
  return [
    ...Array.from({ length: 16 }, (_, i): [PolicyAction, string] => ['mqtt:publish', `sites/${site}/telemetry/${name}/sensor/${i}`]),
    ...Array.from({ length: 8 }, (_, i): [PolicyAction, string] => ['mqtt:receive', `sites/${site}/commands/${name}/op-${i}`]),
    ['mqtt:subscribe', `sites/${site}/commands/${name}/#`],
    ['mqtt:subscribe', `$fw/things/${name}/jobs/notify`],
    ['mqtt:publish', `$fw/things/${name}/metrics`],
    ['mqtt:publish', `things/${name}/admin/reboot`],
    ['mqtt:publish', `things/other/telemetry`],
    ['mqtt:retain', `things/${name}/state`],
    ['mqtt:connect', name],
    ['mqtt:subscribe', '#'],
  ];
}

/** Cached decisions per second: one connection, its requests repeated (the steady state of a device). */
function cachedRun(policies: readonly NamedPolicy[]): number {
  const facts = factsFor(1);
  const compiled = compilePolicies(policies, facts);
  const requests = requestsFor('sensor-1', 'site-1');
  const actions = requests.map(([a]) => a);
  const resources = requests.map(([, r]) => r);
  for (let i = 0; i < requests.length; i++) compiled.allows(actions[i] as PolicyAction, resources[i] as string);
  let allowed = 0;
  const started = performance.now();
  for (let i = 0, j = 0; i < CACHED_DECISIONS; i++, j = j + 1 === requests.length ? 0 : j + 1) {
    if (compiled.allows(actions[j] as PolicyAction, resources[j] as string)) allowed++;
  }
  const seconds = (performance.now() - started) / 1000;
  if (allowed === 0) throw new Error('no request was allowed: the benchmark policy is wrong');
  return CACHED_DECISIONS / seconds;
}

/** Decisions per second with the cache off: every request matched against the patterns. */
function uncachedRun(policies: readonly NamedPolicy[]): number {
  const compiled = compilePolicies(policies, factsFor(1), { cacheEntriesPerAction: 0 });
  const requests = requestsFor('sensor-1', 'site-1');
  const started = performance.now();
  for (let i = 0; i < UNCACHED_DECISIONS; i++) {
    const [action, resource] = requests[i % requests.length] as [PolicyAction, string];
    compiled.allows(action, resource);
  }
  return UNCACHED_DECISIONS / ((performance.now() - started) / 1000);
}

/** Compiles the set for COMPILES different things; returns the mean, the 99th percentile and the slowest compile, in µs. */
function compileRun(policies: readonly NamedPolicy[], offset: number): { meanUs: number; p99Us: number; maxUs: number } {
  const each: number[] = [];
  const started = performance.now();
  for (let i = 0; i < COMPILES; i++) {
    const one = performance.now();
    compilePolicies(policies, factsFor(offset + i));
    each.push((performance.now() - one) * 1000);
  }
  const meanUs = ((performance.now() - started) * 1000) / COMPILES;
  each.sort((a, b) => a - b);
  return { meanUs, p99Us: each[Math.floor(each.length * 0.99)] ?? 0, maxUs: each.at(-1) ?? 0 };
}

/** The first compile after the documents are parsed (resource templates not yet cached), in µs. */
function coldCompile(): number {
  const fresh = policySet();
  const started = performance.now();
  compilePolicies(fresh, factsFor(0));
  return (performance.now() - started) * 1000;
}

export const policy: Scenario = {
  name: 'policy',
  description: 'policy engine in-process: cached decisions per second for one connection, and compiling a 20-statement policy set for one thing',
  async run() {
    const policies = policySet();
    const statements = policies.reduce((n, p) => n + p.document.statements.length, 0);
    if (statements !== 20) throw new Error(`the benchmark set has ${statements} statements, not 20`);
    const cold = coldCompile();
    const cached: number[] = [];
    const uncached: number[] = [];
    const compiles: { meanUs: number; p99Us: number; maxUs: number }[] = [];
    for (let run = 1; run <= RUNS; run++) {
      cached.push(cachedRun(policies));
      uncached.push(uncachedRun(policies));
      compiles.push(compileRun(policies, run * COMPILES));
      progress(`run ${run}/${RUNS}: ${Math.round(cached.at(-1) ?? 0).toLocaleString('en-US')} cached decisions/s, compile ${compiles.at(-1)?.meanUs.toFixed(1)} µs`);
      await Promise.resolve();
    }
    return {
      rows: [
        row(`cached decisions, one connection, ${CACHED_DECISIONS.toLocaleString('en-US')} calls over its ${requestsFor('x', 'y').length} requests`, 'decisions/s', cached, { atLeast: DECISIONS_TARGET }),
        row('uncached decisions (cache off), same requests', 'decisions/s', uncached),
        row(`compile 20 statements for one thing (mean of ${COMPILES.toLocaleString('en-US')} things)`, 'µs', compiles.map((c) => c.meanUs), { below: COMPILE_TARGET_US }),
        row('compile 20 statements: 99th percentile of single compiles', 'µs', compiles.map((c) => c.p99Us)),
        row('compile 20 statements: slowest single compile in a run (garbage collection, JIT)', 'µs', compiles.map((c) => c.maxUs)),
        row('compile 20 statements: first compile after parsing', 'µs', [cold]),
      ],
      raw: { runs: RUNS, cachedDecisions: CACHED_DECISIONS, uncachedDecisions: UNCACHED_DECISIONS, compiles: COMPILES, cached, uncached, compileRuns: compiles, coldCompileUs: cold },
    };
  },
};
