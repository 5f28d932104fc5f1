import { JOB_STATES, type JobState } from '@fleetward/protocol';
import { CANNOT_UPDATE_REASONS, type Deployments } from '../../updates/deployments/index.js';
import { HEALTH_METRICS } from '../../updates/deployments/health-gate.js';
import { DEPLOYMENT_LIMITS } from '../../updates/deployments/spec.js';
import { DEPLOYMENT_STATES } from '../../updates/deployments/states.js';
import { PageQuery, RegistryNameSchema, ThingNameSchema } from '../identity-schemas.js';
import { array, boolean, integer, nullable, object, oneOf, record, string, type Schema } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import type { Api } from '../types.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const tags = ['updates'];
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem };

/** json-schema.ts has no `number` builder yet (fractions: failure rates, ratios, margins). */
const number = (options: Readonly<Record<string, unknown>> = {}): Schema<number> => ({ type: 'number', ...options });

const DeploymentId = string({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
const Target = string({ pattern: '^[A-Za-z0-9._-]{1,255}$', description: 'TUF target path of a signed artifact' });
const Window = object({ start: string({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' }), end: string({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' }) }, {}, { description: 'Daily window, UTC; spans midnight when end < start' });
const HealthAction = oneOf(['off', 'pause', 'abort'] as const);
const HealthNumbers = {
  minCohort: integer({ minimum: 1, maximum: 100_000 }),
  ratio: number({ minimum: 1, maximum: 100 }),
  authFailuresMargin: number({ minimum: 0, maximum: 1000 }),
  listeningPortsMargin: number({ minimum: 0, maximum: 1000 }),
  rebootsMargin: number({ minimum: 0, maximum: 1000 }),
  confirmFailureRate: number({ minimum: 0, maximum: 1 }),
};
const Selection = object(
  {},
  {
    things: array(ThingNameSchema, { maxItems: DEPLOYMENT_LIMITS.maxSelectionNames }),
    groups: array(RegistryNameSchema, { maxItems: DEPLOYMENT_LIMITS.maxSelectionNames }),
    query: object({}, { thingType: RegistryNameSchema, attributes: record(string({ maxLength: 800 }), { maxProperties: 50 }) }),
  },
);
const CreateBody = object(
  { target: Target, selection: Selection },
  {
    phases: array(string({ pattern: '^[0-9]{1,7}$|^[0-9]{1,3}(\\.[0-9]{1,2})?%$' }), { minItems: 1, maxItems: DEPLOYMENT_LIMITS.maxPhases, description: 'Cumulative sizes: 10, 25%, 100%; with exponential, only the first' }),
    ratePerMinute: integer({ minimum: 1, maximum: DEPLOYMENT_LIMITS.maxRatePerMinute }),
    exponential: boolean(),
    abort: object({}, { failureRate: number({ minimum: 0, maximum: 1 }), minDevices: integer({ minimum: 1 }) }),
    timeoutSeconds: integer({ minimum: DEPLOYMENT_LIMITS.minTimeoutSeconds, maximum: DEPLOYMENT_LIMITS.maxTimeoutSeconds }),
    startTimeoutSeconds: integer({ minimum: DEPLOYMENT_LIMITS.minTimeoutSeconds, maximum: DEPLOYMENT_LIMITS.maxTimeoutSeconds }),
    maintenanceWindow: Window,
    health: object({}, { action: HealthAction, ...HealthNumbers }),
  },
);

const countsOf = <T>(value: Schema<T>) => Object.fromEntries(JOB_STATES.map((s) => [s, value])) as Record<JobState, Schema<T>>;
const Counts = object({ ...countsOf(integer()), notReleased: integer(), total: integer() });
const Deployment = object({
  id: string(),
  target: string(),
  version: string(),
  securityVersion: integer(),
  state: oneOf(DEPLOYMENT_STATES),
  reason: nullable(string()),
  automatic: boolean(),
  selection: Selection,
  rollout: object({
    phases: array(string()),
    ratePerMinute: nullable(integer()),
    exponential: boolean(),
    abort: object({ failureRate: number(), minDevices: integer() }),
    timeoutSeconds: integer(),
    startTimeoutSeconds: integer(),
    maintenanceWindow: nullable(Window),
    health: object({ action: HealthAction, ...HealthNumbers }),
  }),
  acknowledged: array(oneOf(HEALTH_METRICS)),
  createdAt: Timestamp,
  createdBy: string(),
  updatedAt: Timestamp,
  phaseStartedAt: nullable(Timestamp),
  currentPhase: nullable(integer()),
  counts: Counts,
  phases: array(object({ phase: integer(), size: integer(), counts: Counts })),
});
const Job = object({
  deploymentId: string(),
  thing: string(),
  phase: integer({ description: '-1: decided when the deployment was created, never released' }),
  state: oneOf(JOB_STATES),
  step: nullable(string()),
  reason: nullable(string()),
  message: nullable(string()),
  bytes: nullable(integer()),
  totalBytes: nullable(integer()),
  releasedAt: nullable(Timestamp),
  startedAt: nullable(Timestamp),
  finishedAt: nullable(Timestamp),
  updatedAt: Timestamp,
});
const CannotUpdate = object({ thing: string(), reasons: array(oneOf(CANNOT_UPDATE_REASONS)), failedJobs: integer(), lastDeployment: nullable(string()), since: Timestamp });
const GroupAutoUpdates = object({ group: string(), autoSecurityUpdates: boolean(), effective: boolean(), members: integer() });
const IdParams = object({ id: DeploymentId });

/** Update deployments (rule 4): create, follow, pause, resume, cancel; devices that cannot update; automatic security updates per group. */
export function deploymentRoutes(app: Api, deps: { readonly deployments: Deployments }): void {
  app.post('/api/v1/deployments', { config: write, schema: { tags, body: CreateBody, response: { 201: Deployment, ...errors } } }, async (request, reply) =>
    reply.code(201).send(await deps.deployments.create(request.body, actorOf(request))),
  );
  app.get(
    '/api/v1/deployments',
    { config: read, schema: { tags, querystring: object({}, { state: oneOf(DEPLOYMENT_STATES), limit: integer({ minimum: 1, maximum: 500, default: 100 }) }), response: { 200: object({ deployments: array(Deployment) }), ...errors } } },
    async (request) => ({ deployments: await deps.deployments.list(request.query) }),
  );
  app.get('/api/v1/deployments/:id', { config: read, schema: { tags, params: IdParams, response: { 200: Deployment, ...errors } } }, async (request) => deps.deployments.get(request.params.id));
  app.get(
    '/api/v1/deployments/:id/jobs',
    {
      config: read,
      schema: { tags, params: IdParams, querystring: object({}, { ...PageQuery, state: oneOf(JOB_STATES), phase: integer({ minimum: -1, maximum: 1000 }) }), response: { 200: object({ jobs: array(Job), next: nullable(string()) }), ...errors } },
    },
    async (request) => deps.deployments.jobs(request.params.id, request.query),
  );
  for (const [verb, run] of [
    ['cancel', (id: string, actor: ReturnType<typeof actorOf>) => deps.deployments.cancel(id, actor)],
    ['pause', (id: string, actor: ReturnType<typeof actorOf>) => deps.deployments.pause(id, actor)],
    ['resume', (id: string, actor: ReturnType<typeof actorOf>) => deps.deployments.resume(id, actor)],
  ] as const) {
    app.post(`/api/v1/deployments/:id/${verb}`, { config: write, schema: { tags, params: IdParams, response: { 200: Deployment, ...errors } } }, async (request) => run(request.params.id, actorOf(request)));
  }
  app.get('/api/v1/updates/cannot-update', { config: read, schema: { tags, response: { 200: object({ devices: array(CannotUpdate) }), ...errors } } }, async () => ({ devices: await deps.deployments.cannotUpdate() }));
  app.get('/api/v1/updates/auto-security-updates', { config: read, schema: { tags, response: { 200: object({ groups: array(GroupAutoUpdates) }), ...errors } } }, async () => ({ groups: await deps.deployments.groupAutoUpdates() }));
  app.put(
    '/api/v1/groups/:group/auto-security-updates',
    { config: write, schema: { tags, params: object({ group: RegistryNameSchema }), body: object({ enabled: boolean() }), response: { 200: GroupAutoUpdates, ...errors } } },
    async (request) => deps.deployments.setGroupAutoUpdates(request.params.group, request.body.enabled, actorOf(request)),
  );
}
