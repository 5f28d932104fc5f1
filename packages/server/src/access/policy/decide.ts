import { isClientId, topicFilterLevels, topicNameLevels } from './request.js';
import type { ActionRules, Rule, RuleSet } from './rules.js';
import { covers, intersects, matchesTopic, reachesForeignNamespace, type Levels } from './topic-algebra.js';
import type { Decision, PolicyAction, StatementRef } from './types.js';

export const DEFAULT_DENY: Decision = Object.freeze({ allowed: false, reason: 'default-deny' });
export const RESERVED_TOPIC: Decision = Object.freeze({ allowed: false, reason: 'reserved-topic' });
export const MALFORMED_REQUEST: Decision = Object.freeze({ allowed: false, reason: 'malformed-request' });

/** Each thing's reserved namespace is `$fw/things/{thing}/...` (ARCHITECTURE.md "Reserved MQTT topics"). */
export const RESERVED_THING_PREFIX: Levels = ['$fw', 'things'];

/**
 * Decides one request without a cache. Order: malformed requests, then another thing's reserved
 * namespace, then any matching deny (deny wins), then any allow; otherwise default deny.
 * `own` is the connection's thing name (undefined: no thing, so every `$fw/things/...` is foreign).
 */
export function decideRequest(rules: RuleSet, own: string | undefined, action: PolicyAction, resource: string): Decision {
  switch (action) {
    case 'mqtt:connect':
      return isClientId(resource) ? decideClient(rules[action], resource) : MALFORMED_REQUEST;
    case 'mqtt:subscribe':
      return decideFilter(rules[action], own, topicFilterLevels(resource));
    case 'mqtt:publish':
    case 'mqtt:receive':
    case 'mqtt:retain':
      return decideTopic(rules[action], own, topicNameLevels(resource));
    default:
      // Not an action at all (a caller outside TypeScript): refuse rather than answer undefined.
      return MALFORMED_REQUEST;
  }
}

function decideClient(rules: ActionRules, id: string): Decision {
  const hit = (rule: Rule) => rule.resource.match === 'any-client' || rule.resource.match === 'everything' || (rule.resource.match === 'exact' && rule.resource.id === id);
  return (rules.deny.find(hit) ?? rules.allow.find(hit))?.decision ?? DEFAULT_DENY;
}

function decideTopic(rules: ActionRules, own: string | undefined, topic: Levels | null): Decision {
  if (topic === null) return MALFORMED_REQUEST;
  if (reachesForeignNamespace(topic, RESERVED_THING_PREFIX, own)) return RESERVED_TOPIC;
  const hit = (rule: Rule) => rule.resource.match === 'everything' || (rule.resource.match === 'levels' && matchesTopic(rule.resource.levels, topic));
  return (rules.deny.find(hit) ?? rules.allow.find(hit))?.decision ?? DEFAULT_DENY;
}

/**
 * A filter is allowed iff every topic it can match is matched by some allow pattern and by no deny
 * pattern: denied as soon as a deny pattern meets it, allowed when the allow patterns cover it.
 */
function decideFilter(rules: ActionRules, own: string | undefined, filter: Levels | null): Decision {
  if (filter === null) return MALFORMED_REQUEST;
  if (reachesForeignNamespace(filter, RESERVED_THING_PREFIX, own)) return RESERVED_TOPIC;
  const denied = rules.deny.find((rule) => rule.resource.match === 'everything' || (rule.resource.match === 'levels' && intersects(rule.resource.levels, filter)));
  if (denied !== undefined) return denied.decision;
  const overlapping = rules.allow.filter((rule) => rule.resource.match === 'levels' && intersects(rule.resource.levels, filter));
  const alone = overlapping.find((rule) => covers(filter, [levelsOf(rule)]));
  if (alone !== undefined) return alone.decision;
  const first = overlapping[0];
  if (first === undefined || !covers(filter, overlapping.map(levelsOf))) return DEFAULT_DENY;
  return Object.freeze({ allowed: true, reason: 'allowed', statement: first.ref, together: Object.freeze(distinctRefs(overlapping)) });
}

function levelsOf(rule: Rule): Levels {
  return rule.resource.match === 'levels' ? rule.resource.levels : [];
}

function distinctRefs(rules: readonly Rule[]): StatementRef[] {
  const refs: StatementRef[] = [];
  for (const rule of rules) if (!refs.includes(rule.ref)) refs.push(rule.ref);
  return refs;
}
