import { SEVERITIES, RESPONSE_ACTIONS } from '../../monitor/types.js';
import { ACTION_STATES, ALERT_STATES, TIMELINE_KINDS, VERDICTS } from '../../monitor/alerts/alert-states.js';
import type { AlertServices } from '../../monitor/alerts/alert-services.js';
import { RESPONSE_LIMITS } from '../../monitor/alerts/response-actions.js';
import { SUPPRESSION_LIMITS } from '../../monitor/alerts/suppressions.js';
import { ALERT_LIMITS } from '../../monitor/alerts/alerts.js';
import { RegistryNameSchema, ThingNameSchema } from '../identity-schemas.js';
import { array, boolean, integer, nullable, object, oneOf, record, string, unknown } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import type { Api } from '../types.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const tags = ['monitor'];
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem };

const Id = string({ pattern: '^[a-z]{2,3}-[0-9a-f]{8,32}$' });
const Severity = oneOf(SEVERITIES);
const Verdict = oneOf(VERDICTS);
const Note = string({ minLength: 1, maxLength: ALERT_LIMITS.maxNoteLength });
const Details = record(unknown());
const Alert = object({
  id: string(),
  dedupeKey: string(),
  thing: nullable(string()),
  behavior: string(),
  profile: nullable(string()),
  severity: Severity,
  metric: string(),
  value: unknown(),
  message: string(),
  state: oneOf(ALERT_STATES),
  verdict: nullable(Verdict),
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  count: integer(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
const TimelineEntry = object({ position: integer(), at: Timestamp, kind: oneOf(TIMELINE_KINDS), actor: string(), summary: string(), details: Details });
const ResponseAction = object({
  id: string(),
  alert: nullable(string()),
  thing: string(),
  action: oneOf(RESPONSE_ACTIONS),
  params: object({}, { durationSeconds: integer(), target: string(), serial: string(), reason: string() }),
  mode: oneOf(['automatic', 'manual'] as const),
  state: oneOf(ACTION_STATES),
  result: Details,
  errorCode: nullable(string()),
  requestedBy: string(),
  decidedBy: nullable(string()),
  expiresAt: nullable(Timestamp),
  releasedAt: nullable(Timestamp),
  createdAt: Timestamp,
  finishedAt: nullable(Timestamp),
});
const Delivery = object({
  id: string(),
  webhook: string(),
  alert: string(),
  state: oneOf(['pending', 'delivered', 'failed'] as const),
  attempts: integer(),
  nextAttemptAt: nullable(Timestamp),
  lastStatus: nullable(integer()),
  lastError: nullable(string()),
  createdAt: Timestamp,
  deliveredAt: nullable(Timestamp),
});
const Incident = object({ alert: Alert, timeline: array(TimelineEntry), actions: array(ResponseAction), deliveries: array(Delivery) });
const Suppression = object({
  id: string(),
  behavior: nullable(string()),
  thing: nullable(string()),
  group: nullable(string()),
  expiresAt: Timestamp,
  note: nullable(string()),
  suppressed: integer(),
  lastSuppressedAt: nullable(Timestamp),
  createdAt: Timestamp,
  createdBy: string(),
});
const Webhook = object({ name: string(), url: string(), minSeverity: Severity, pinnedCa: boolean(), createdAt: Timestamp, createdBy: string() });
const Behavior = string({ pattern: '^[A-Za-z0-9._:/-]{1,128}$' });
const AlertParams = object({ id: Id });

/** Rule 5 response: alerts and their incidents, suppressions, response actions and notification webhooks. */
export function alertRoutes(app: Api, deps: { readonly alerts: AlertServices }): void {
  const { alerts, suppressions, response, notifier } = deps.alerts;

  app.get(
    '/api/v1/alerts',
    {
      config: read,
      schema: { tags, querystring: object({}, { state: oneOf([...ALERT_STATES, 'active'] as const), thing: ThingNameSchema, severity: Severity, limit: integer({ minimum: 1, maximum: ALERT_LIMITS.listMax, default: 100 }) }), response: { 200: object({ alerts: array(Alert) }), ...errors } },
    },
    async (request) => ({ alerts: await alerts.list(request.query) }),
  );
  app.get('/api/v1/alerts/:id', { config: read, schema: { tags, params: AlertParams, response: { 200: Incident, ...errors } } }, async (request) => deps.alerts.incident(request.params.id));
  app.post(
    '/api/v1/alerts/:id/acknowledge',
    { config: write, schema: { tags, params: AlertParams, body: object({}, { note: Note }), response: { 200: Alert, ...errors } } },
    async (request) => alerts.acknowledge(request.params.id, actorOf(request), request.body.note),
  );
  app.post(
    '/api/v1/alerts/:id/resolve',
    { config: write, schema: { tags, params: AlertParams, body: object({}, { verdict: Verdict, note: Note }), response: { 200: Alert, ...errors } } },
    async (request) => alerts.resolve(request.params.id, actorOf(request), request.body),
  );
  app.post(
    '/api/v1/alerts/:id/notes',
    { config: write, schema: { tags, params: AlertParams, body: object({ text: Note }), response: { 201: TimelineEntry, ...errors } } },
    async (request, reply) => reply.code(201).send(await alerts.note(request.params.id, request.body.text, actorOf(request))),
  );
  app.put(
    '/api/v1/alerts/:id/verdict',
    { config: write, schema: { tags, params: AlertParams, body: object({ verdict: Verdict }, { note: Note }), response: { 200: Alert, ...errors } } },
    async (request) => alerts.setVerdict(request.params.id, request.body.verdict, actorOf(request), request.body.note),
  );

  app.get(
    '/api/v1/alert-suppressions',
    { config: read, schema: { tags, querystring: object({}, { all: boolean() }), response: { 200: object({ suppressions: array(Suppression) }), ...errors } } },
    async (request) => ({ suppressions: await suppressions.list(request.query) }),
  );
  app.post(
    '/api/v1/alert-suppressions',
    {
      config: write,
      schema: {
        tags,
        body: object({ durationSeconds: integer({ minimum: 1, maximum: SUPPRESSION_LIMITS.maxDurationSeconds }) }, { behavior: Behavior, thing: ThingNameSchema, group: RegistryNameSchema, note: string({ maxLength: SUPPRESSION_LIMITS.maxNoteLength }) }),
        response: { 201: Suppression, ...errors },
      },
    },
    async (request, reply) => reply.code(201).send(await suppressions.add(request.body, actorOf(request))),
  );
  app.delete('/api/v1/alert-suppressions/:id', { config: write, schema: { tags, params: AlertParams, response: { 200: Suppression, ...errors } } }, async (request) =>
    suppressions.lift(request.params.id, actorOf(request)),
  );

  app.post(
    '/api/v1/things/:name/response',
    {
      config: write,
      schema: {
        tags,
        params: object({ name: ThingNameSchema }),
        body: object(
          { action: oneOf(RESPONSE_ACTIONS) },
          {
            alert: Id,
            durationSeconds: integer({ minimum: 1, maximum: RESPONSE_LIMITS.maxQuarantineSeconds, description: 'quarantine: released automatically after this long' }),
            target: string({ pattern: '^[A-Za-z0-9._-]{1,255}$', description: 'start-update: TUF target of a signed artifact' }),
            serial: string({ pattern: '^[0-9a-fA-F]{2,40}$' }),
            reason: string({ maxLength: 256 }),
          },
        ),
        response: { 200: ResponseAction, ...errors },
      },
    },
    async (request) => {
      const { action, alert, ...params } = request.body;
      return response.run({ action, thing: request.params.name, ...(alert !== undefined && { alert }), params }, actorOf(request));
    },
  );
  app.post(
    '/api/v1/things/:name/release',
    {
      config: write,
      schema: { tags, params: object({ name: ThingNameSchema }), body: object({}, { note: Note }), response: { 200: object({ thing: string(), from: string(), to: string(), changed: boolean() }), ...errors } },
    },
    async (request) => response.release(request.params.name, actorOf(request), request.body.note),
  );
  app.get(
    '/api/v1/response-actions',
    {
      config: read,
      schema: { tags, querystring: object({}, { thing: ThingNameSchema, alert: Id, state: oneOf(ACTION_STATES), limit: integer({ minimum: 1, maximum: RESPONSE_LIMITS.listMax, default: 100 }) }), response: { 200: object({ actions: array(ResponseAction) }), ...errors } },
    },
    async (request) => ({ actions: await response.list(request.query) }),
  );
  app.post('/api/v1/response-actions/:id/approve', { config: write, schema: { tags, params: AlertParams, response: { 200: ResponseAction, ...errors } } }, async (request) =>
    response.approve(request.params.id, actorOf(request)),
  );
  app.post(
    '/api/v1/response-actions/:id/reject',
    { config: write, schema: { tags, params: AlertParams, body: object({}, { reason: string({ maxLength: 256 }) }), response: { 200: ResponseAction, ...errors } } },
    async (request) => response.reject(request.params.id, actorOf(request), request.body.reason),
  );

  app.get('/api/v1/notify/webhooks', { config: read, schema: { tags, response: { 200: object({ webhooks: array(Webhook) }), ...errors } } }, async () => ({ webhooks: await notifier.listWebhooks() }));
  app.post(
    '/api/v1/notify/webhooks',
    {
      config: write,
      schema: {
        tags,
        body: object(
          { name: string({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }), url: string({ maxLength: 2048, pattern: '^https://' }) },
          { secret: string({ minLength: 16, maxLength: 256 }), caPem: string({ maxLength: 65_536 }), minSeverity: Severity },
        ),
        response: { 201: object({ webhook: Webhook, secret: string({ description: 'The HMAC secret: shown once' }) }), ...errors },
      },
    },
    async (request, reply) => reply.code(201).send(await notifier.addWebhook(request.body, actorOf(request))),
  );
  app.delete(
    '/api/v1/notify/webhooks/:name',
    { config: write, schema: { tags, params: object({ name: string({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }) }), response: { 200: object({ removed: string() }), ...errors } } },
    async (request) => {
      await notifier.removeWebhook(request.params.name, actorOf(request));
      return { removed: request.params.name };
    },
  );
}
