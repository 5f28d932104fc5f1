/**
 * The policy engine (rule 2): language, parser, compiler with a decision cache, simulator
 * explanation, analyzer and AWS IoT importer. Pure modules: the gateway, API and CLI wire them.
 */
export { analyzePolicies } from './analyze.js';
export { FINDING_THING_SAMPLE, type AnalyzedThing, type AnalyzerInput, type Finding, type FindingCode, type PolicyUsage, type Severity } from './analyze-types.js';
export { importAwsIotPolicy, type AwsImportOptions } from './aws/import-aws-policy.js';
export { compilePolicies, CompiledPolicy, type CompileOptions } from './compile.js';
export type { CompiledStatement } from './compile-statement.js';
export { DEFAULT_CACHE_ENTRIES_PER_ACTION } from './decision-cache.js';
export { DEFAULT_DEVICE_POLICY, DEFAULT_DEVICE_POLICY_NAME } from './default-policy.js';
export { effectivePolicies, type Attachment, type AttachmentTarget, type EffectivePolicy } from './effective-policies.js';
export { describeDecision, explain, type Explanation, type StatementTrace, type TraceOutcome } from './explain.js';
export { POLICY_LIMITS } from './limits.js';
export { parsePolicyDocument, parsePolicyJson } from './parse-policy.js';
export { serializePolicy } from './serialize.js';
export {
  CURRENT_POLICY_VERSION,
  POLICY_ACTIONS,
  POLICY_VERSIONS,
  type Condition,
  type Conditions,
  type ConnectionFacts,
  type Decision,
  type Effect,
  type NamedPolicy,
  type PolicyAction,
  type PolicyDocument,
  type PolicyVersion,
  type Statement,
  type StatementRef,
  type TopicAction,
} from './types.js';
