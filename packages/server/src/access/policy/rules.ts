import type { CompiledStatement } from './compile-statement.js';
import type { CompiledResource } from './substitute.js';
import { POLICY_ACTIONS, type Decision, type PolicyAction, type StatementRef } from './types.js';

/** A resource of an applying statement, with the decision it gives, built once (no allocation per request). */
export interface Rule {
  readonly resource: Exclude<CompiledResource, { readonly match: 'nothing' }>;
  readonly ref: StatementRef;
  readonly decision: Decision;
}

export interface ActionRules {
  readonly deny: readonly Rule[];
  readonly allow: readonly Rule[];
}

export type RuleSet = Readonly<Record<PolicyAction, ActionRules>>;

export function kindOf(action: PolicyAction): 'client' | 'topic' {
  return action === 'mqtt:connect' ? 'client' : 'topic';
}

/**
 * Sorts the resources of the statements that apply into allow and deny lists per action, in policy
 * and statement order (that order only picks which statement is named; deny always wins). Resources
 * that match nothing (unresolved allows) are left out.
 */
export function buildRules(statements: readonly CompiledStatement[]): RuleSet {
  const rules = Object.fromEntries(POLICY_ACTIONS.map((action) => [action, { deny: [] as Rule[], allow: [] as Rule[] }])) as Record<PolicyAction, { deny: Rule[]; allow: Rule[] }>;
  for (const statement of statements) {
    if (!statement.conditions.applies) continue;
    const decision: Decision = Object.freeze(
      statement.effect === 'allow' ? { allowed: true, reason: 'allowed', statement: statement.ref } : { allowed: false, reason: 'denied', statement: statement.ref },
    );
    for (const action of statement.actions) {
      for (const resource of statement.resources) {
        if (resource.kind !== kindOf(action) || resource.match === 'nothing') continue;
        rules[action][statement.effect].push({ resource, ref: statement.ref, decision });
      }
    }
  }
  return rules;
}
