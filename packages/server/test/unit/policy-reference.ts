/**
 * A deliberately naive reference for the policy semantics of docs/policies.md, written from the
 * definitions and sharing no code with src/access/policy. Property tests compare the compiled
 * evaluator with it. Subscribe is decided by brute force over a finite universe of topics that is
 * exact for the patterns at hand: at each level, every literal any pattern or the filter has there,
 * plus one value none has ("zz", and "$zz" at the first level); and one level deeper than the longest
 * pattern. Patterns cannot tell two unmentioned values apart, nor a deeper topic from its truncation.
 */
import { isIP } from 'node:net';
import type { ConnectionFacts, NamedPolicy, PolicyAction, Statement } from '../../src/access/policy/index.js';

export interface ReferenceDecision {
  readonly allowed: boolean;
  readonly reason: 'allowed' | 'denied' | 'default-deny' | 'reserved-topic' | 'malformed-request';
  readonly statement?: { readonly policy: string; readonly index: number };
  readonly together?: readonly { readonly policy: string; readonly index: number }[];
}

const EVERYTHING = Symbol('everything');
type Resource = string | typeof EVERYTHING;

/** MQTT matching of one topic name by one pattern, straight from MQTT-4.7. */
export function referenceMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('/');
  const t = topic.split('/');
  if ((p[0] === '+' || p[0] === '#') && t[0]!.startsWith('$')) return false;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '#') return true;
    if (i >= t.length) return false;
    if (p[i] !== '+' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

function validName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000');
}

function unshare(filter: string): string | null {
  if (!filter.startsWith('$share/')) return filter;
  const rest = filter.slice('$share/'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || /[+#]/.test(rest.slice(0, slash))) return null;
  return rest.slice(slash + 1);
}

function validFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : l.includes('+') ? l === '+' : true));
}

// ---- conditions -------------------------------------------------------------------------------

function toBigInt(address: string): { value: bigint; bits: number } | null {
  const plain = address.split('%')[0]!;
  if (isIP(plain) === 4) return { value: plain.split('.').reduce((acc, o) => (acc << 8n) | BigInt(o), 0n), bits: 32 };
  if (isIP(plain) !== 6) return null;
  // The URL parser writes IPv6 in canonical hex form (no embedded dotted quad), easy to expand.
  const canonical = new URL(`http://[${plain}]/`).hostname.slice(1, -1);
  const [head, tail] = canonical.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = groups(tail);
  const all = canonical.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const value = all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (value >> 32n === 0xffffn) return { value: value & 0xffffffffn, bits: 32 }; // IPv4-mapped
  return { value, bits: 128 };
}

function inBlock(address: { value: bigint; bits: number }, block: string): boolean {
  const [net, prefix] = block.split('/') as [string, string];
  const network = toBigInt(net);
  if (network === null || network.bits !== address.bits) return false;
  const shift = BigInt(address.bits - Number(prefix));
  return address.value >> shift === network.value >> shift;
}

type Truth = 'yes' | 'no' | 'unknown';

function conditionTruths(statement: Statement, facts: ConnectionFacts): Truth[] {
  const c = statement.conditions;
  if (c === undefined) return [];
  const truths: Truth[] = [];
  if (c.sourceAddress !== undefined) {
    const address = facts.sourceAddress === undefined ? null : toBigInt(facts.sourceAddress);
    truths.push(address === null ? 'unknown' : c.sourceAddress.some((b) => inBlock(address, b)) ? 'yes' : 'no');
  }
  if (c.thingAttributes !== undefined) {
    const attrs = facts.thing?.attributes ?? {};
    truths.push(facts.thing === undefined ? 'unknown' : Object.entries(c.thingAttributes).every(([k, v]) => Object.hasOwn(attrs, k) && attrs[k] === v) ? 'yes' : 'no');
  }
  if (c.certIssuer !== undefined) {
    const issuer = facts.cert?.issuer;
    truths.push(issuer === undefined ? 'unknown' : c.certIssuer.includes(issuer) ? 'yes' : 'no');
  }
  return truths;
}

function applies(statement: Statement, facts: ConnectionFacts): boolean {
  const truths = conditionTruths(statement, facts);
  return statement.effect === 'allow' ? truths.every((t) => t === 'yes') : !truths.includes('no');
}

// ---- substitution -----------------------------------------------------------------------------

function valueOf(variable: string, facts: ConnectionFacts): string | undefined {
  if (variable === 'thing.name') return facts.thing?.name;
  if (variable === 'thing.type') return facts.thing?.type ?? undefined;
  if (variable === 'cert.cn') return facts.cert?.cn;
  if (variable === 'cert.serial') return facts.cert?.serial;
  const key = variable.slice('thing.attr.'.length);
  const attrs = facts.thing?.attributes;
  return attrs !== undefined && Object.hasOwn(attrs, key) ? attrs[key] : undefined;
}

/** The resource after substitution: its text, EVERYTHING (an unresolved deny) or null (an unresolved allow). */
function substitute(resource: string, statement: Statement, facts: ConnectionFacts): Resource | null {
  if (resource === 'client/*') return resource;
  const topic = resource.startsWith('topic/');
  let unresolved = false;
  const text = resource.replace(/\$\{([^}]*)\}/g, (whole: string, variable: string, offset: number): string => {
    const value = valueOf(variable, facts);
    const startsPattern = topic && offset === 'topic/'.length;
    if (value === undefined || value === '' || value.includes('\u0000') || (topic && (/[/+#]/.test(value) || (startsPattern && value.startsWith('$'))))) {
      unresolved = true;
      return whole;
    }
    return value;
  });
  if (!unresolved) return text;
  return statement.effect === 'allow' ? null : EVERYTHING;
}

interface Rule {
  readonly policy: string;
  readonly index: number;
  readonly effect: 'allow' | 'deny';
  readonly resources: readonly Resource[];
}

function rulesFor(policies: readonly NamedPolicy[], facts: ConnectionFacts, action: PolicyAction): Rule[] {
  const prefix = action === 'mqtt:connect' ? 'client/' : 'topic/';
  return policies.flatMap((policy) =>
    policy.document.statements.flatMap((statement, index) => {
      if (!statement.actions.includes(action) || !applies(statement, facts)) return [];
      const resources = statement.resources.filter((r) => r.startsWith(prefix)).map((r) => substitute(r, statement, facts)).filter((r): r is Resource => r !== null);
      return [{ policy: policy.name, index, effect: statement.effect, resources }];
    }),
  );
}

// ---- decisions --------------------------------------------------------------------------------

function ref(rule: Rule) {
  return { policy: rule.policy, index: rule.index };
}

function decideClient(rules: readonly Rule[], id: string): ReferenceDecision {
  const hits = (rule: Rule) => rule.resources.some((r) => r === EVERYTHING || r === 'client/*' || r === `client/${id}`);
  const deny = rules.find((r) => r.effect === 'deny' && hits(r));
  if (deny) return { allowed: false, reason: 'denied', statement: ref(deny) };
  const allow = rules.find((r) => r.effect === 'allow' && hits(r));
  return allow ? { allowed: true, reason: 'allowed', statement: ref(allow) } : { allowed: false, reason: 'default-deny' };
}

function isForeignReserved(topic: string, own: string | undefined): boolean {
  const t = topic.split('/');
  return t[0] === '$fw' && t[1] === 'things' && t.length >= 3 && t[2] !== own;
}

/** Every topic name of the bounded universe for these patterns (see the header). */
function universe(patterns: readonly string[]): string[] {
  const split = patterns.map((p) => p.split('/'));
  const depth = Math.max(...split.map((p) => p.length)) + 1;
  const alphabet = (i: number) => [...new Set([...split.map((p) => p[i]).filter((l): l is string => l !== undefined && l !== '+' && l !== '#'), 'zz', ...(i === 0 ? ['$zz'] : [])])];
  let layer = alphabet(0);
  const all = [...layer];
  for (let i = 1; i < depth; i++) {
    const next = alphabet(i);
    layer = layer.flatMap((t) => next.map((l) => `${t}/${l}`));
    all.push(...layer);
  }
  return all;
}

function patternsOf(rules: readonly Rule[]): string[] {
  return rules.flatMap((r) => r.resources.filter((x): x is string => x !== EVERYTHING).map((x) => x.slice('topic/'.length)));
}

function decideTopics(rules: readonly Rule[], own: string | undefined, topics: readonly string[]): ReferenceDecision {
  if (topics.some((t) => isForeignReserved(t, own))) return { allowed: false, reason: 'reserved-topic' };
  const reaches = (resource: Resource) => (resource === EVERYTHING ? topics.length > 0 : topics.some((t) => referenceMatches(resource.slice('topic/'.length), t)));
  const contains = (resource: Resource) => resource !== EVERYTHING && topics.every((t) => referenceMatches(resource.slice('topic/'.length), t));
  const deny = rules.find((r) => r.effect === 'deny' && r.resources.some(reaches));
  if (deny) return { allowed: false, reason: 'denied', statement: ref(deny) };
  const allows = rules.filter((r) => r.effect === 'allow');
  const alone = allows.find((r) => r.resources.some(contains));
  if (alone) return { allowed: true, reason: 'allowed', statement: ref(alone) };
  const overlapping = allows.filter((r) => r.resources.some(reaches));
  const covered = topics.every((t) => overlapping.some((r) => r.resources.some((x) => x !== EVERYTHING && referenceMatches(x.slice('topic/'.length), t))));
  if (overlapping.length === 0 || !covered) return { allowed: false, reason: 'default-deny' };
  return { allowed: true, reason: 'allowed', statement: ref(overlapping[0]!), together: overlapping.map(ref) };
}

export function referenceDecide(policies: readonly NamedPolicy[], facts: ConnectionFacts, action: PolicyAction, request: string): ReferenceDecision {
  const rules = rulesFor(policies, facts, action);
  const own = facts.thing?.name;
  if (action === 'mqtt:connect') return request === '' || request.includes('\u0000') ? { allowed: false, reason: 'malformed-request' } : decideClient(rules, request);
  if (action !== 'mqtt:subscribe') return validName(request) ? decideTopics(rules, own, [request]) : { allowed: false, reason: 'malformed-request' };
  const filter = unshare(request);
  if (filter === null || !validFilter(filter)) return { allowed: false, reason: 'malformed-request' };
  // The reserved namespaces are part of the picture: `$fw/things/<some other thing>/...`.
  const topics = universe([filter, '$fw/things/+/#', ...patternsOf(rules)]).filter((t) => referenceMatches(filter, t));
  return decideTopics(rules, own, topics);
}
