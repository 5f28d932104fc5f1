import type { FindingCode, Severity } from './analyze-types.js';
import { compileStatement } from './compile-statement.js';
import { RESERVED_THING_PREFIX } from './decide.js';
import { kindOf } from './rules.js';
import type { CompiledResource } from './substitute.js';
import { reachesForeignNamespace } from './topic-algebra.js';
import type { ConnectionFacts, NamedPolicy, PolicyAction, Statement } from './types.js';

/** One problem a statement's resource has for one thing; the analyzer groups them across things. */
export interface ThingHit {
  readonly code: FindingCode;
  readonly severity: Severity;
  readonly policy: string;
  readonly index: number;
  readonly sid: string | null;
  readonly action: PolicyAction;
  readonly resource: string;
  readonly detail: string;
}

const APPLICATION_PREFIX = ['things'];

/**
 * Checks one statement after substitution for one thing. Conditions are ignored on purpose: they
 * depend on where the thing connects from, and least privilege is judged on what could be granted.
 */
export function thingHits(policy: NamedPolicy, index: number, statement: Statement, facts: ConnectionFacts, firstLevelWildcard: (resource: string) => boolean): ThingHit[] {
  const compiled = compileStatement(policy.name, index, statement, facts);
  const own = facts.thing?.name;
  const hits: ThingHit[] = [];
  const hit = (code: FindingCode, severity: Severity, action: PolicyAction, resource: string, detail: string) =>
    hits.push({ code, severity, policy: policy.name, index, sid: statement.sid ?? null, action, resource, detail });
  for (const [i, resource] of compiled.resources.entries()) {
    const written = statement.resources[i] as string;
    const action = statement.actions.find((a) => kindOf(a) === resource.kind);
    if (action === undefined) continue;
    if (resource.match === 'nothing') hit('unresolved-variable', 'low', action, written, `grants nothing: ${resource.unresolved.map((v) => `\${${v}}`).join(', ')} has no usable value`);
    else if (resource.match === 'everything') hit('unresolved-variable', 'medium', action, written, `denies every ${resource.kind === 'client' ? 'client id' : 'topic'}: ${resource.unresolved.map((v) => `\${${v}}`).join(', ')} has no usable value`);
    else if (statement.effect === 'allow') allowHits(resource, own, action, written, firstLevelWildcard(written), hit);
  }
  return hits;
}

function allowHits(
  resource: CompiledResource,
  own: string | undefined,
  action: PolicyAction,
  written: string,
  wildcardReported: boolean,
  hit: (code: FindingCode, severity: Severity, action: PolicyAction, resource: string, detail: string) => void,
): void {
  if (resource.match === 'any-client') hit('foreign-client-id', 'high', action, written, 'may connect with any client id, and so knock any device offline');
  if (resource.match === 'exact' && resource.id !== own) hit('foreign-client-id', 'high', action, written, `may connect as client id ${JSON.stringify(resource.id)}`);
  // A first-level wildcard is reported once as wildcard-*; repeating it per thing adds nothing.
  if (resource.match !== 'levels' || wildcardReported) return;
  if (reachesForeignNamespace(resource.levels, APPLICATION_PREFIX, own)) hit('cross-thing-access', 'high', action, written, `reaches other things' topics through ${resource.text}`);
  if (reachesForeignNamespace(resource.levels, RESERVED_THING_PREFIX, own)) {
    hit('cross-thing-access', 'medium', action, written, `names other things' reserved topics through ${resource.text} (refused at run time, but the policy says otherwise)`);
  }
}
