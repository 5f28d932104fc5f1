import type { MetricsStore } from '../../monitor/metrics/metrics-store.js';
import { CUSTOM_METRIC_KINDS } from '../../monitor/metrics/custom-metrics.js';
import type { SecurityProfiles } from '../../monitor/security-profiles.js';
import { RegistryNameSchema, ThingNameSchema } from '../identity-schemas.js';
import { array, integer, nullable, object, oneOf, record, string, unknown } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import type { Api } from '../types.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const tags = ['monitor'];
const errors = { ...authenticatedErrors, 404: Problem } as const;
const ProfileName = string({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' });
const Profile = object({ name: string(), description: string(), document: record(unknown()), groups: array(string()), createdAt: Timestamp, updatedAt: Timestamp, createdBy: string() });
const Declaration = object({ thingType: string(), name: string(), kind: oneOf(CUSTOM_METRIC_KINDS), description: string() });
const Range = object({}, { since: Timestamp, until: Timestamp, limit: integer({ minimum: 1, maximum: 10_080 }) });
const GroupWindow = object({
  windowStart: Timestamp, devices: integer(), reporting: integer(), connectAttempts: integer(), authnFailures: integer(), authzFailures: integer(), disconnects: integer(),
  messagesIn: integer(), messagesOut: integer(), bytesIn: integer(), bytesOut: integer(), messageSizeMax: integer(), listeningTotalMax: nullable(integer()), cpuPercentMean: unknown(),
});
const DAY_MS = 86_400_000;

/** Rule 5: security profiles and their groups, stored security metrics, custom metric declarations. */
export function monitorRoutes(app: Api, deps: { readonly profiles: SecurityProfiles; readonly metrics: MetricsStore; readonly now: () => Date }): void {
  const since = (q: { since?: string }) => q.since ?? new Date(deps.now().getTime() - DAY_MS).toISOString();

  app.get('/api/v1/monitor/profiles', { config: read, schema: { tags, response: { 200: object({ profiles: array(Profile) }), ...errors } } }, async () => ({ profiles: await deps.profiles.list() }));
  app.post(
    '/api/v1/monitor/profiles',
    { config: write, schema: { tags, description: 'Create or replace a security profile (docs/rule-05-monitoring.md).', body: record(unknown()), response: { 201: Profile, ...errors } } },
    async (request, reply) => reply.code(201).send(await deps.profiles.put(request.body, actorOf(request))),
  );
  app.get('/api/v1/monitor/profiles/:name', { config: read, schema: { tags, params: object({ name: ProfileName }), response: { 200: Profile, ...errors } } }, (request) => deps.profiles.get(request.params.name));
  app.delete(
    '/api/v1/monitor/profiles/:name',
    { config: write, schema: { tags, params: object({ name: ProfileName }), response: { 200: object({ deleted: string() }), ...errors } } },
    async (request) => {
      await deps.profiles.delete(request.params.name, actorOf(request));
      return { deleted: request.params.name };
    },
  );
  app.put(
    '/api/v1/monitor/profiles/:name/groups/:group',
    { config: write, schema: { tags, params: object({ name: ProfileName, group: RegistryNameSchema }), response: { 200: Profile, ...errors } } },
    async (request) => {
      await deps.profiles.attach(request.params.name, request.params.group, actorOf(request));
      return deps.profiles.get(request.params.name);
    },
  );
  app.delete(
    '/api/v1/monitor/profiles/:name/groups/:group',
    { config: write, schema: { tags, params: object({ name: ProfileName, group: RegistryNameSchema }), response: { 200: Profile, ...errors } } },
    async (request) => {
      await deps.profiles.detach(request.params.name, request.params.group, actorOf(request));
      return deps.profiles.get(request.params.name);
    },
  );
  app.get(
    '/api/v1/monitor/metrics/things/:thing',
    { config: read, schema: { tags, params: object({ thing: ThingNameSchema }), querystring: Range, response: { 200: object({ thing: string(), windows: array(unknown()) }), ...errors } } },
    async (request) => {
      const q = request.query;
      return { thing: request.params.thing, windows: await deps.metrics.device(request.params.thing, { since: since(q), ...(q.until !== undefined && { until: q.until }), ...(q.limit !== undefined && { limit: q.limit }) }) };
    },
  );
  app.get(
    '/api/v1/monitor/metrics/groups/:group',
    { config: read, schema: { tags, params: object({ group: RegistryNameSchema }), querystring: Range, response: { 200: object({ group: string(), windows: array(GroupWindow) }), ...errors } } },
    async (request) => ({ group: request.params.group, windows: await deps.metrics.group(request.params.group, { since: since(request.query), ...(request.query.until !== undefined && { until: request.query.until }) }) }),
  );
  app.get(
    '/api/v1/monitor/custom-metrics',
    { config: read, schema: { tags, querystring: object({}, { thingType: RegistryNameSchema }), response: { 200: object({ declarations: array(Declaration) }), ...errors } } },
    async (request) => ({ declarations: await deps.metrics.listCustom(request.query.thingType) }),
  );
  app.post(
    '/api/v1/monitor/custom-metrics',
    { config: write, schema: { tags, body: object({ thingType: RegistryNameSchema, name: string({ maxLength: 64 }), kind: oneOf(CUSTOM_METRIC_KINDS) }, { description: string({ maxLength: 256 }) }), response: { 201: Declaration, ...errors } } },
    async (request, reply) => reply.code(201).send(await deps.metrics.declareCustom(request.body, actorOf(request))),
  );
  app.delete(
    '/api/v1/monitor/custom-metrics/:thingType/:name',
    { config: write, schema: { tags, params: object({ thingType: RegistryNameSchema, name: string({ maxLength: 64 }) }), response: { 200: object({ removed: string() }), ...errors } } },
    async (request) => {
      await deps.metrics.removeCustom(request.params.thingType, request.params.name, actorOf(request));
      return { removed: `${request.params.thingType}/${request.params.name}` };
    },
  );
}
