import type { Attachment } from './effective-policies.js';
import type { ConnectionFacts, NamedPolicy, PolicyAction, StatementRef } from './types.js';

/**
 * Stable finding codes (docs/policies.md "Analyzer"): scripts and the console key on them.
 * - `wildcard-publish` / `wildcard-subscribe`: an allow with a wildcard first level (`#`, `+/...`);
 * - `cross-thing-access`: an allow that lets a thing reach `things/<other>/...` or `$fw/things/<other>/...`;
 * - `foreign-client-id`: an allow that lets a thing connect with a client id other than its own name;
 * - `unresolved-variable`: a variable without a usable value for some thing (the allow grants nothing,
 *   or the deny denies everything);
 * - `unattached-policy`: a policy attached to nothing;
 * - `unused-action`: an allowed action no connection used within the window.
 */
export type FindingCode = 'wildcard-publish' | 'wildcard-subscribe' | 'cross-thing-access' | 'foreign-client-id' | 'unresolved-variable' | 'unattached-policy' | 'unused-action';

export type Severity = 'high' | 'medium' | 'low';

export interface Finding {
  readonly code: FindingCode;
  readonly severity: Severity;
  readonly policy: string;
  readonly statement: StatementRef | null;
  readonly action: PolicyAction | null;
  /** The resource as written in the policy. */
  readonly resource: string | null;
  /** Things concerned, sorted, at most FINDING_THING_SAMPLE of them; `thingCount` has the total. */
  readonly things: readonly string[];
  readonly thingCount: number;
  readonly message: string;
}

export const FINDING_THING_SAMPLE = 20;

export interface AnalyzedThing {
  /** The thing's facts; `thing.groups` must hold its groups with their ancestors. */
  readonly facts: ConnectionFacts;
  /** Serials of its certificates, for policies attached to certificates. */
  readonly certificates?: readonly string[];
}

/** The last time an action of a statement allowed something, from the audit trail. */
export interface PolicyUsage {
  readonly policy: string;
  readonly statement: number;
  readonly action: PolicyAction;
  /** ISO 8601. */
  readonly lastUsedAt: string;
}

export interface AnalyzerInput {
  readonly policies: readonly (NamedPolicy & { readonly createdAt?: string })[];
  readonly attachments: readonly Attachment[];
  readonly things: readonly AnalyzedThing[];
  readonly usage: readonly PolicyUsage[];
  readonly now: Date;
  /** `unused-action` window; a policy younger than this is not judged. */
  readonly unusedDays: number;
}
