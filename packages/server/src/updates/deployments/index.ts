export { CANNOT_UPDATE_REASONS, DEFAULT_CANNOT_UPDATE_AFTER_FAILURES, type CannotUpdate, type CannotUpdateReason } from './cannot-update.js';
export { Deployments, type ArtifactSource, type DeploymentsDependencies, type DeploymentThings, type JobFilter, type SecurityReleaseResult, type TickResult } from './deployments.js';
export { type Deployment, type DeploymentJob, type JobCounts, type PhaseProgress, type RolloutView } from './deployment-view.js';
export { compareHealth, DEFAULT_HEALTH_THRESHOLDS, HEALTH_METRICS, type HealthGate, type HealthMetric, type HealthProvider, type HealthRegression, type HealthSample } from './health-gate.js';
export { assignPhases, inWindow, phaseSizes, planRollout, type PlanInput, type PlanJob, type RolloutPlan } from './rollout-plan.js';
export { type GroupAutoUpdates } from './security-releases.js';
export { DEFAULT_ROLLOUT, DEPLOYMENT_LIMITS, parsePhases, type DeploymentRequest, type MaintenanceWindow, type Selection } from './spec.js';
export { DEPLOYMENT_STATES, isFinalDeployment, type DeploymentState } from './states.js';
