import { BAN_KINDS, type DeviceBans } from '../../access/device-bans.js';
import type { Api } from '../types.js';
import { array, integer, nullable, object, oneOf, string } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const tags = ['gateway'];
const Kind = oneOf(BAN_KINDS);
const Value = string({ minLength: 1, maxLength: 128 });
const Ban = object({ kind: Kind, value: string(), expiresAt: nullable(Timestamp), note: nullable(string()), createdAt: Timestamp, createdBy: string() });

/** Operator bans of devices from the gateway (every node enforces them). */
export function banRoutes(app: Api, deps: { readonly bans: DeviceBans }): void {
  app.get('/api/v1/bans', { config: read, schema: { tags, response: { 200: object({ bans: array(Ban) }), ...authenticatedErrors } } }, async () => ({ bans: await deps.bans.list() }));
  app.post(
    '/api/v1/bans',
    {
      config: write,
      schema: {
        tags,
        body: object({ kind: Kind, value: Value }, { durationSeconds: integer({ minimum: 1, maximum: 315_360_000 }), note: string({ maxLength: 256 }) }),
        response: { 201: Ban, ...authenticatedErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await deps.bans.add(request.body, actorOf(request))),
  );
  app.delete(
    '/api/v1/bans/:kind/:value',
    { config: write, schema: { tags, params: object({ kind: Kind, value: Value }), response: { 200: object({ lifted: object({ kind: Kind, value: string() }) }), 404: Problem, ...authenticatedErrors } } },
    async (request) => {
      await deps.bans.lift(request.params.kind, request.params.value, actorOf(request));
      return { lifted: { kind: request.params.kind, value: request.params.value } };
    },
  );
}
