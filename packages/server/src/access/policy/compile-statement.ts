import { evaluateConditions, type ConditionsResult } from './conditions.js';
import { parseResource, type ResourceTemplate } from './resource-template.js';
import { substituteResource, type CompiledResource } from './substitute.js';
import type { ConnectionFacts, Effect, PolicyAction, Statement, StatementRef } from './types.js';

/** One statement prepared for one connection: conditions evaluated, variables substituted. */
export interface CompiledStatement {
  readonly ref: StatementRef;
  readonly effect: Effect;
  readonly actions: readonly PolicyAction[];
  readonly conditions: ConditionsResult;
  readonly resources: readonly CompiledResource[];
}

/**
 * Resource templates by statement object. Parsed documents are frozen and shared by every connection
 * of every thing they apply to, so each statement's resources are parsed once, not per connection.
 */
const templates = new WeakMap<Statement, readonly ResourceTemplate[]>();

function templatesOf(statement: Statement, path: string): readonly ResourceTemplate[] {
  let parsed = templates.get(statement);
  if (parsed === undefined) {
    // Documents normally come from parsePolicyDocument; a hand-built one is validated here all the same.
    parsed = statement.resources.map((resource, i) => parseResource(resource, `${path}/resources/${i}`));
    templates.set(statement, parsed);
  }
  return parsed;
}

export function compileStatement(policy: string, index: number, statement: Statement, facts: ConnectionFacts): CompiledStatement {
  const ref: StatementRef = Object.freeze({ policy, index, sid: statement.sid ?? null });
  return {
    ref,
    effect: statement.effect,
    actions: statement.actions,
    conditions: evaluateConditions(statement.conditions, statement.effect, facts),
    resources: templatesOf(statement, `/statements/${index}`).map((template) => substituteResource(template, statement.effect, facts)),
  };
}
