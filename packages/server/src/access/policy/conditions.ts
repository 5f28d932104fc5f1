import { cidrContains, parseAddress, parseCidr } from './cidr.js';
import type { Condition, Conditions, ConnectionFacts, Effect } from './types.js';

/** A condition's outcome: `unknown` when the fact it needs is missing (e.g. no source address). */
export type ConditionOutcome = 'holds' | 'fails' | 'unknown';

export interface ConditionsResult {
  /** Whether the statement takes part in decisions for this connection. */
  readonly applies: boolean;
  /** Conditions that failed, or were unknown for an allow statement. */
  readonly unmet: readonly Condition[];
}

/**
 * Evaluates a statement's conditions once per connection (facts do not change while it lasts). An
 * allow statement applies only when every condition holds; a deny statement applies unless one
 * definitely fails, so a missing fact can never lift a deny (fail closed).
 */
export function evaluateConditions(conditions: Conditions | undefined, effect: Effect, facts: ConnectionFacts): ConditionsResult {
  if (conditions === undefined) return { applies: true, unmet: [] };
  const outcomes: [Condition, ConditionOutcome][] = [];
  if (conditions.sourceAddress !== undefined) outcomes.push(['sourceAddress', sourceAddressOutcome(conditions.sourceAddress, facts)]);
  if (conditions.thingAttributes !== undefined) outcomes.push(['thingAttributes', attributesOutcome(conditions.thingAttributes, facts)]);
  if (conditions.certIssuer !== undefined) outcomes.push(['certIssuer', issuerOutcome(conditions.certIssuer, facts)]);
  const unmet = outcomes.filter(([, outcome]) => outcome === 'fails' || (effect === 'allow' && outcome === 'unknown')).map(([name]) => name);
  return { applies: unmet.length === 0, unmet };
}

function sourceAddressOutcome(blocks: readonly string[], facts: ConnectionFacts): ConditionOutcome {
  const address = facts.sourceAddress === undefined ? null : parseAddress(facts.sourceAddress);
  if (address === null) return 'unknown';
  // Blocks were validated by the parser; one that does not parse (a hand-built document) matches nothing.
  return blocks.some((block) => {
    const cidr = parseCidr(block);
    return typeof cidr !== 'string' && cidrContains(cidr, address);
  })
    ? 'holds'
    : 'fails';
}

function attributesOutcome(expected: Readonly<Record<string, string>>, facts: ConnectionFacts): ConditionOutcome {
  // No thing at all is unknown; a thing without the attribute is a known mismatch.
  if (facts.thing === undefined) return 'unknown';
  const actual = facts.thing.attributes ?? {};
  return Object.entries(expected).every(([key, value]) => Object.hasOwn(actual, key) && actual[key] === value) ? 'holds' : 'fails';
}

function issuerOutcome(issuers: readonly string[], facts: ConnectionFacts): ConditionOutcome {
  const issuer = facts.cert?.issuer;
  if (issuer === undefined) return 'unknown';
  return issuers.includes(issuer) ? 'holds' : 'fails';
}
