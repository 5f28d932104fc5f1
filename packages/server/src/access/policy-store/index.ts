/**
 * Device policies as stored and managed (rule 2): versioned documents, attachments, the effective
 * policies of a connection, the change log gateways poll, the simulator and the fleet analyzer.
 * The language and its evaluation are the pure engine in ../policy.
 */
export { ANALYZE_LIMITS, type FleetAnalysis } from './analyze-fleet.js';
export { attachmentTarget } from './attachment-targets.js';
export type { EffectiveSet, EffectiveStoredPolicy, GroupAncestry, PolicyScope } from './effective-policies.js';
export { affectsConnection, POLICY_CHANGES_PER_POLL, type ConnectionScope, type PolicyChanges } from './policy-changes.js';
export { POLICY_STORE_LIMITS, RESERVED_POLICY_PREFIX, type PolicyAttachment, type StoredPolicy, type StoredPolicyVersion } from './policy-records.js';
export { PolicyStore, type PolicyStoreDependencies } from './policy-store.js';
export type { DecidingStatement, Simulation, SimulationRequest } from './simulate.js';
