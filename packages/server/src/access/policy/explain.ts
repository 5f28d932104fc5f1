import { compilePolicies } from './compile.js';
import type { CompiledStatement } from './compile-statement.js';
import { isClientId, topicFilterLevels, topicNameLevels } from './request.js';
import { kindOf } from './rules.js';
import type { CompiledResource } from './substitute.js';
import { covers, intersects, matchesTopic, type Levels } from './topic-algebra.js';
import type { Condition, ConnectionFacts, Decision, Effect, NamedPolicy, PolicyAction, StatementRef } from './types.js';
import type { VariableName } from './variables.js';

/**
 * How one statement that names the action relates to the request:
 * - `matches`: it applies and one of its resources matches (for a subscribe filter: contains it);
 * - `overlaps`: subscribe only, it applies and a resource meets part of the filter;
 * - `no-match`: it applies, but none of its resources reaches the request;
 * - `conditions-not-met`: its conditions leave it out for this connection.
 */
export type TraceOutcome = 'matches' | 'overlaps' | 'no-match' | 'conditions-not-met';

export interface StatementTrace {
  readonly statement: StatementRef;
  readonly effect: Effect;
  readonly outcome: TraceOutcome;
  /** Its resources of the action's kind after substitution (unresolved variables left as written). */
  readonly resources: readonly string[];
  readonly unmetConditions: readonly Condition[];
  readonly unresolvedVariables: readonly VariableName[];
}

export interface Explanation {
  readonly decision: Decision;
  /** Every statement naming the action, in evaluation order. */
  readonly statements: readonly StatementTrace[];
}

/**
 * What `fleetward policies simulate` shows: the decision with its deciding statement, and how every
 * statement naming the action relates to the request. Uses the same compiler as the gateway, so the
 * simulator cannot disagree with enforcement.
 */
export function explain(policies: readonly NamedPolicy[], facts: ConnectionFacts, action: PolicyAction, resource: string): Explanation {
  const compiled = compilePolicies(policies, facts, { cacheEntriesPerAction: 0 });
  const decision = compiled.decide(action, resource);
  const request = requestOf(action, resource);
  const statements = compiled.statements.filter((s) => s.actions.includes(action)).map((s) => trace(s, action, request));
  return { decision, statements };
}

type Request = { readonly kind: 'client'; readonly id: string } | { readonly kind: 'topic'; readonly levels: Levels; readonly filter: boolean } | null;

function requestOf(action: PolicyAction, resource: string): Request {
  if (action === 'mqtt:connect') return isClientId(resource) ? { kind: 'client', id: resource } : null;
  const levels = action === 'mqtt:subscribe' ? topicFilterLevels(resource) : topicNameLevels(resource);
  return levels === null ? null : { kind: 'topic', levels, filter: action === 'mqtt:subscribe' };
}

function trace(statement: CompiledStatement, action: PolicyAction, request: Request): StatementTrace {
  const resources = statement.resources.filter((r) => r.kind === kindOf(action));
  const reach = statement.conditions.applies ? bestReach(resources, request) : 'conditions-not-met';
  return {
    statement: statement.ref,
    effect: statement.effect,
    outcome: reach,
    resources: resources.map((r) => r.text),
    unmetConditions: statement.conditions.unmet,
    unresolvedVariables: [...new Set(resources.flatMap((r) => r.unresolved))],
  };
}

function bestReach(resources: readonly CompiledResource[], request: Request): TraceOutcome {
  const reaches = resources.map((r) => reachOf(r, request));
  if (reaches.includes('matches')) return 'matches';
  return reaches.includes('overlaps') ? 'overlaps' : 'no-match';
}

function reachOf(resource: CompiledResource, request: Request): TraceOutcome {
  if (request === null || resource.match === 'nothing') return 'no-match';
  if (resource.match === 'everything' || resource.match === 'any-client') return 'matches';
  if (resource.match === 'exact') return request.kind === 'client' && request.id === resource.id ? 'matches' : 'no-match';
  if (request.kind !== 'topic') return 'no-match';
  if (!request.filter) return matchesTopic(resource.levels, request.levels) ? 'matches' : 'no-match';
  if (covers(request.levels, [resource.levels])) return 'matches';
  return intersects(resource.levels, request.levels) ? 'overlaps' : 'no-match';
}

/** One line for logs and the CLI: which statement decided, or why nothing did. */
export function describeDecision(decision: Decision): string {
  const name = (ref: StatementRef) => `policy ${ref.policy} statement ${ref.index}${ref.sid === null ? '' : ` (${ref.sid})`}`;
  switch (decision.reason) {
    case 'allowed':
      return decision.together === undefined ? `allowed by ${name(decision.statement)}` : `allowed by ${decision.together.map(name).join(' together with ')}`;
    case 'denied':
      return `denied by ${name(decision.statement)} (an explicit deny always wins)`;
    case 'default-deny':
      return 'denied: no statement allows (default deny)';
    case 'reserved-topic':
      return "denied: another thing's reserved $fw/things/{thing}/ namespace";
    case 'malformed-request':
      return 'denied: not a valid client id, topic name or topic filter';
  }
}
