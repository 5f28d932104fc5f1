/**
 * The policy language's values (docs/policies.md). Every value here is plain, read-only data: the
 * parser produces it, the compiler, explainer, analyzer and importer consume it, and none of them
 * does I/O (STYLE: pure core).
 */

/** Language versions this build understands; a document names the one it was written for. */
export const POLICY_VERSIONS = ['2026-11'] as const;
export type PolicyVersion = (typeof POLICY_VERSIONS)[number];
export const CURRENT_POLICY_VERSION: PolicyVersion = '2026-11';

export const POLICY_ACTIONS = ['mqtt:connect', 'mqtt:publish', 'mqtt:subscribe', 'mqtt:receive', 'mqtt:retain'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** Actions decided on a topic (a name, or a filter for subscribe); `mqtt:connect` is decided on a client id. */
export type TopicAction = Exclude<PolicyAction, 'mqtt:connect'>;

export type Effect = 'allow' | 'deny';

/**
 * The conditions of a statement: every named one must hold (AND); within one, any listed value may
 * match (OR). Conditions never contain variables.
 */
export interface Conditions {
  /** The connection's source address lies in one of these CIDR blocks (IPv4 or IPv6). */
  readonly sourceAddress?: readonly string[];
  /** Each named thing attribute exists and equals the value exactly. */
  readonly thingAttributes?: Readonly<Record<string, string>>;
  /** The client certificate's issuer distinguished name equals one of these exactly. */
  readonly certIssuer?: readonly string[];
}

/** The name of one condition, as explanations and findings report it. */
export type Condition = keyof Conditions;

export interface Statement {
  /** Optional statement id, unique within its policy; decisions name it. */
  readonly sid?: string;
  readonly effect: Effect;
  readonly actions: readonly PolicyAction[];
  /** `client/<id>` (or `client/*`) for `mqtt:connect`, `topic/<pattern>` for the others. */
  readonly resources: readonly string[];
  readonly conditions?: Conditions;
}

export interface PolicyDocument {
  readonly version: PolicyVersion;
  readonly description?: string;
  readonly statements: readonly Statement[];
}

/** A stored policy: its registry name and its document. */
export interface NamedPolicy {
  readonly name: string;
  readonly document: PolicyDocument;
}

/**
 * What is known about one connection when its policies are compiled. Values come from the registry
 * and the verified certificate, never from the device's own claims (the client id is recorded, but it
 * is not a variable: a device chooses it).
 */
export interface ConnectionFacts {
  /** Absent for a connection that is not (yet) a thing, e.g. a claim certificate. */
  readonly thing?: {
    readonly name: string;
    readonly type?: string | null;
    readonly attributes?: Readonly<Record<string, string>>;
    /** Groups the thing is in, with their ancestors (what policies are inherited from). */
    readonly groups?: readonly string[];
  };
  readonly cert?: {
    readonly cn?: string;
    readonly serial?: string;
    /** Issuer distinguished name, in the form the gateway renders it (compared exactly). */
    readonly issuer?: string;
  };
  /** IPv4 or IPv6 address the connection comes from. */
  readonly sourceAddress?: string;
  readonly clientId?: string;
}

/** Which statement decided: the policy's name, the statement's index (0-based) and sid. */
export interface StatementRef {
  readonly policy: string;
  readonly index: number;
  readonly sid: string | null;
}

/**
 * The answer for one request. Only `allowed: true` allows. `together` lists, for a subscribe filter
 * that no single statement covers, the allow statements whose patterns cover it jointly.
 */
export type Decision =
  | { readonly allowed: true; readonly reason: 'allowed'; readonly statement: StatementRef; readonly together?: readonly StatementRef[] }
  | { readonly allowed: false; readonly reason: 'denied'; readonly statement: StatementRef }
  /** No statement allows (default deny). */
  | { readonly allowed: false; readonly reason: 'default-deny' }
  /** Another thing's `$fw/things/{thing}/...` namespace: refused whatever the policies say. */
  | { readonly allowed: false; readonly reason: 'reserved-topic' }
  /** Not a valid topic name, topic filter or client id. */
  | { readonly allowed: false; readonly reason: 'malformed-request' };
