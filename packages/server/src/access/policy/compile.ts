import { compileStatement, type CompiledStatement } from './compile-statement.js';
import { DecisionCache, DEFAULT_CACHE_ENTRIES_PER_ACTION } from './decision-cache.js';
import { decideRequest } from './decide.js';
import { buildRules, type RuleSet } from './rules.js';
import type { ConnectionFacts, Decision, NamedPolicy, PolicyAction } from './types.js';

export interface CompileOptions {
  /** Cached decisions per action (default 128; 0 turns the cache off). */
  readonly cacheEntriesPerAction?: number;
}

/**
 * The policies of one connection, compiled against its facts. Immutable: when a policy, an
 * attachment, a group membership or an attribute changes, the caller compiles a new one and drops
 * this one (and its cache) — nothing here can go stale on its own.
 */
export class CompiledPolicy {
  readonly statements: readonly CompiledStatement[];
  readonly #rules: RuleSet;
  readonly #own: string | undefined;
  readonly #cache: DecisionCache;

  constructor(statements: readonly CompiledStatement[], own: string | undefined, options: CompileOptions = {}) {
    this.statements = statements;
    this.#rules = buildRules(statements);
    this.#own = own;
    this.#cache = new DecisionCache(options.cacheEntriesPerAction ?? DEFAULT_CACHE_ENTRIES_PER_ACTION);
  }

  /**
   * Decides one request. `resource` is what the device asks for, without a prefix: the client id for
   * `mqtt:connect`, the topic filter for `mqtt:subscribe`, the topic name for the other actions.
   */
  decide(action: PolicyAction, resource: string): Decision {
    const cached = this.#cache.get(action, resource);
    if (cached !== undefined) return cached;
    const decision = decideRequest(this.#rules, this.#own, action, resource);
    this.#cache.set(action, resource, decision);
    return decision;
  }

  /** The boolean fast path of `decide`. */
  allows(action: PolicyAction, resource: string): boolean {
    return this.decide(action, resource).allowed;
  }

  /** A PUBLISH needs `mqtt:publish`, and with the retain flag also `mqtt:retain`; the first refusal is returned. */
  decidePublish(topic: string, retain: boolean): Decision {
    const publish = this.decide('mqtt:publish', topic);
    return retain && publish.allowed ? this.decide('mqtt:retain', topic) : publish;
  }

  get cachedDecisions(): number {
    return this.#cache.size;
  }
}

/**
 * Compiles a connection's effective policies (see effectivePolicies) against its facts: conditions
 * are evaluated and variables substituted once, here, so each decision only matches patterns.
 */
export function compilePolicies(policies: readonly NamedPolicy[], facts: ConnectionFacts, options: CompileOptions = {}): CompiledPolicy {
  const statements = policies.flatMap((policy) => policy.document.statements.map((statement, index) => compileStatement(policy.name, index, statement, facts)));
  return new CompiledPolicy(statements, facts.thing?.name, options);
}
