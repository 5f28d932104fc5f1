import { DATA_WEBHOOK_LIMITS, DATA_WEBHOOK_STARTS, DATA_WEBHOOK_STATES, type DataWebhooks } from '../../data/data-webhooks.js';
import { MAX_WEBHOOK_URL_LENGTH } from '../../webhooks/https-webhook.js';
import { array, boolean, integer, nullable, object, oneOf, string } from '../json-schema.js';
import { authenticatedErrors, Problem, RoleSchema, Timestamp } from '../schemas.js';
import type { Api } from '../types.js';
import { readerOf } from './data.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem };
const tags = ['data'];
const Name = string({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' });
const Params = object({ name: Name });

const DataWebhook = object({
  name: string(),
  url: string({ description: 'Origin and path only' }),
  pinnedCa: boolean(),
  contract: nullable(string()),
  topic: nullable(string()),
  purpose: string(),
  role: RoleSchema,
  state: oneOf(DATA_WEBHOOK_STATES),
  cursor: string({ description: 'Store position up to which the receiver acknowledged everything (opaque)' }),
  sequence: integer({ description: 'Number of the newest batch made' }),
  pending: nullable(object({ delivery: string(), sequence: integer(), attempts: integer(), nextAttemptAt: nullable(Timestamp) })),
  lastAttempt: nullable(object({ at: Timestamp, status: nullable(integer()), error: nullable(string()) })),
  lastDelivery: nullable(object({ delivery: string(), at: Timestamp, records: integer() })),
  delivered: object({ batches: integer(), records: integer() }),
  failedAttempts: integer(),
  createdAt: Timestamp,
  createdBy: string(),
  secretRotatedAt: nullable(Timestamp),
});
const WithSecret = object({ webhook: DataWebhook, secret: string({ description: 'The HMAC-SHA256 secret: shown once' }) });
const Create = object(
  { name: Name, url: string({ maxLength: MAX_WEBHOOK_URL_LENGTH, description: 'https:// only' }) },
  {
    // Optional here so that a missing purpose gets the same FW_ERR_PURPOSE_REQUIRED as a query without one.
    purpose: string({ pattern: '^[a-z][a-z0-9-]{0,63}$', description: 'Why the consumer reads (required): only fields declared for it are sent' }),
    role: RoleSchema,
    contract: string({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    topic: string({ maxLength: DATA_WEBHOOK_LIMITS.maxTopicBytes, description: 'MQTT topic filter' }),
    caPem: string({ maxLength: DATA_WEBHOOK_LIMITS.maxCaPemBytes }),
    start: oneOf(DATA_WEBHOOK_STARTS),
  },
);

/** Rule 9: consumers of the minimized telemetry stream over HMAC-signed webhooks. */
export function dataWebhookRoutes(app: Api, deps: { readonly webhooks: DataWebhooks }): void {
  const { webhooks } = deps;
  app.get('/api/v1/data/webhooks', { config: read, schema: { tags, description: 'Data webhook consumers, with cursor and delivery state (never their secrets).', response: { 200: object({ webhooks: array(DataWebhook) }), ...errors } } }, async () => ({
    webhooks: await webhooks.list(),
  }));
  app.post(
    '/api/v1/data/webhooks',
    {
      config: write,
      schema: {
        tags,
        description: "Registers a consumer of the minimized stream: fields declared for its purpose, within its role's clearance (at most the caller's). Answers the generated HMAC secret once. Audited.",
        body: Create,
        response: { 201: WithSecret, ...errors },
      },
    },
    async (request, reply) => reply.code(201).send(await webhooks.create(request.body, readerOf(request))),
  );
  app.get('/api/v1/data/webhooks/:name', { config: read, schema: { tags, params: Params, response: { 200: DataWebhook, ...errors } } }, async (request) => webhooks.get(request.params.name));
  app.delete('/api/v1/data/webhooks/:name', { config: write, schema: { tags, description: 'Removes a consumer and its cursor. Audited.', params: Params, response: { 200: object({ deleted: string() }), ...errors } } }, async (request) => {
    await webhooks.delete(request.params.name, actorOf(request));
    return { deleted: request.params.name };
  });
  app.post('/api/v1/data/webhooks/:name/pause', { config: write, schema: { tags, description: 'Stops deliveries; the cursor is kept. Audited.', params: Params, response: { 200: DataWebhook, ...errors } } }, async (request) =>
    webhooks.setState(request.params.name, 'paused', actorOf(request)),
  );
  app.post('/api/v1/data/webhooks/:name/resume', { config: write, schema: { tags, description: 'Resumes deliveries from the cursor, retrying a batch in flight at once. Audited.', params: Params, response: { 200: DataWebhook, ...errors } } }, async (request) =>
    webhooks.setState(request.params.name, 'active', actorOf(request)),
  );
  app.post('/api/v1/data/webhooks/:name/rotate-secret', { config: write, schema: { tags, description: 'A new HMAC secret, answered once; every later delivery is signed with it. Audited.', params: Params, response: { 200: WithSecret, ...errors } } }, async (request) =>
    webhooks.rotateSecret(request.params.name, actorOf(request)),
  );
}
