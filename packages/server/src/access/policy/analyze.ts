import { thingHits, type ThingHit } from './analyze-things.js';
import { FINDING_THING_SAMPLE, type AnalyzedThing, type AnalyzerInput, type Finding, type Severity } from './analyze-types.js';
import { effectivePolicies, type Attachment } from './effective-policies.js';
import { TOPIC_PREFIX } from './resource-template.js';
import type { NamedPolicy, PolicyAction, Statement } from './types.js';

const DAY_MS = 86_400_000;
const SEVERITY_RANK: Readonly<Record<Severity, number>> = { high: 0, medium: 1, low: 2 };

/**
 * Finds least-privilege violations (`fleetward policies analyze`). Pure: the caller loads policies,
 * attachments, things with their facts and the audit-derived usage, and passes the time. Findings are
 * sorted by severity, policy, statement and code, so two runs over the same data print the same list.
 */
export function analyzePolicies(input: AnalyzerInput): Finding[] {
  const findings = [
    ...input.policies.flatMap(wildcardFindings),
    ...thingFindings(input),
    ...unattachedFindings(input.policies, input.attachments),
    ...unusedFindings(input),
  ];
  return findings.sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      compareText(a.policy, b.policy) ||
      (a.statement?.index ?? -1) - (b.statement?.index ?? -1) ||
      compareText(a.code, b.code) ||
      compareText(a.resource ?? '', b.resource ?? '') ||
      compareText(a.action ?? '', b.action ?? ''),
  );
}

/** Code-unit order, not the locale's: the same data sorts the same on every machine. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A topic pattern whose first level is `+` or `#` reaches every application's namespace. */
export function hasFirstLevelWildcard(resource: string): boolean {
  if (!resource.startsWith(TOPIC_PREFIX)) return false;
  const first = resource.slice(TOPIC_PREFIX.length).split('/')[0];
  return first === '+' || first === '#';
}

/** `#`, `+/#`, `+/+/#`...: every topic outside the `$` namespaces (at some depth). */
function reachesEverything(resource: string): boolean {
  const levels = resource.slice(TOPIC_PREFIX.length).split('/');
  return levels.at(-1) === '#' && levels.slice(0, -1).every((l) => l === '+');
}

function wildcardFindings(policy: NamedPolicy): Finding[] {
  return policy.document.statements.flatMap((statement, index) => {
    if (statement.effect !== 'allow') return [];
    return statement.resources.filter(hasFirstLevelWildcard).flatMap((resource) => {
      const publish = statement.actions.filter((a) => a === 'mqtt:publish' || a === 'mqtt:retain');
      const subscribe = statement.actions.filter((a) => a === 'mqtt:subscribe');
      const severity: Severity = reachesEverything(resource) ? 'high' : 'medium';
      const reach = severity === 'high' ? 'every topic outside the $ namespaces' : "a topic in every application's namespace";
      return [
        ...(publish.length > 0 ? [finding('wildcard-publish', severity, policy, index, statement, publish, resource, [], `${publish.join(' and ')} on ${resource} reaches ${reach}`)] : []),
        ...(subscribe.length > 0 ? [finding('wildcard-subscribe', severity, policy, index, statement, subscribe, resource, [], `mqtt:subscribe on ${resource} reaches ${reach}`)] : []),
      ];
    });
  });
}

function thingFindings(input: AnalyzerInput): Finding[] {
  const byName = new Map(input.policies.map((p) => [p.name, p]));
  const groups = new Map<string, { hit: ThingHit; things: Set<string> }>();
  for (const thing of input.things) {
    for (const name of policiesOf(thing, input.attachments)) {
      const policy = byName.get(name);
      if (policy === undefined) continue;
      for (const [index, statement] of policy.document.statements.entries()) {
        for (const hit of thingHits(policy, index, statement, thing.facts, hasFirstLevelWildcard)) {
          const key = JSON.stringify([hit.code, hit.policy, hit.index, hit.resource, hit.severity]);
          const group = groups.get(key) ?? { hit, things: new Set<string>() };
          group.things.add(thing.facts.thing?.name ?? '(no thing)');
          groups.set(key, group);
        }
      }
    }
  }
  return [...groups.values()].map(({ hit, things }) => {
    const policy = byName.get(hit.policy) as NamedPolicy;
    const statement = policy.document.statements[hit.index] as Statement;
    const sorted = [...things].sort();
    const example = sorted.length === 1 ? `thing ${sorted[0]}` : `${sorted.length} things (e.g. ${sorted[0]})`;
    return finding(hit.code, hit.severity, policy, hit.index, statement, [hit.action], hit.resource, sorted, `${example}: ${hit.detail}`);
  });
}

/** Every policy a thing may get: its own, its groups', and those of any of its certificates. */
function policiesOf(thing: AnalyzedThing, attachments: readonly Attachment[]): Set<string> {
  const name = thing.facts.thing?.name ?? null;
  const groups = thing.facts.thing?.groups ?? [];
  const serials = thing.certificates ?? [];
  const lists = serials.length === 0 ? [effectivePolicies(attachments, name, groups, null)] : serials.map((serial) => effectivePolicies(attachments, name, groups, serial));
  return new Set(lists.flat().map((p) => p.policy));
}

function unattachedFindings(policies: readonly NamedPolicy[], attachments: readonly Attachment[]): Finding[] {
  const attached = new Set(attachments.map((a) => a.policy));
  return policies
    .filter((p) => !attached.has(p.name))
    .map((p) => ({ code: 'unattached-policy', severity: 'low', policy: p.name, statement: null, action: null, resource: null, things: [], thingCount: 0, message: `policy ${p.name} is attached to nothing: delete it or attach it` }));
}

function unusedFindings(input: AnalyzerInput): Finding[] {
  const cutoff = input.now.getTime() - input.unusedDays * DAY_MS;
  const attached = new Set(input.attachments.map((a) => a.policy));
  const lastUsed = new Map<string, number>();
  for (const use of input.usage) {
    const at = Date.parse(use.lastUsedAt);
    if (Number.isNaN(at)) continue;
    const key = JSON.stringify([use.policy, use.statement, use.action]);
    lastUsed.set(key, Math.max(lastUsed.get(key) ?? -Infinity, at));
  }
  return input.policies.flatMap((policy) => {
    // Too young to judge, or not in force at all (unattached-policy covers that).
    if (!attached.has(policy.name) || (policy.createdAt !== undefined && Date.parse(policy.createdAt) > cutoff)) return [];
    return policy.document.statements.flatMap((statement, index) => {
      if (statement.effect !== 'allow') return [];
      return statement.actions.flatMap((action) => {
        const last = lastUsed.get(JSON.stringify([policy.name, index, action]));
        if (last !== undefined && last >= cutoff) return [];
        const when = last === undefined ? 'never used' : `last used ${new Date(last).toISOString()}`;
        return [finding('unused-action', 'low', policy, index, statement, [action], null, [], `${action} not used in the last ${input.unusedDays} days (${when}): remove it if no device needs it`)];
      });
    });
  });
}

function finding(
  code: Finding['code'],
  severity: Severity,
  policy: NamedPolicy,
  index: number,
  statement: Statement,
  actions: readonly PolicyAction[],
  resource: string | null,
  things: readonly string[],
  detail: string,
): Finding {
  const ref = { policy: policy.name, index, sid: statement.sid ?? null };
  const where = `policy ${policy.name} statement ${index}${ref.sid === null ? '' : ` (${ref.sid})`}`;
  return {
    code,
    severity,
    policy: policy.name,
    statement: ref,
    action: actions[0] ?? null,
    resource,
    things: things.slice(0, FINDING_THING_SAMPLE),
    thingCount: things.length,
    message: `${where}: ${detail}`,
  };
}
