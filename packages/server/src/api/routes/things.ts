import type { ThingTypes } from '../../identity/registry/thing-types.js';
import type { Things } from '../../identity/registry/things.js';
import type { Groups } from '../../identity/registry/groups.js';
import type { Api } from '../types.js';
import { array, boolean, nullable, object, string } from '../json-schema.js';
import { AttributeChangesSchema, AttributesSchema, Group, PageQuery, RegistryNameSchema, Thing, ThingNameSchema, ThingStateSchema, ThingType } from '../identity-schemas.js';
import { authenticatedErrors, Problem } from '../schemas.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem };

/** The registry: things, thing types and groups. Reading needs fleet:read, changing fleet:write. */
export function thingRoutes(app: Api, deps: { readonly things: Things; readonly thingTypes: ThingTypes; readonly groups: Groups }): void {
  const tags = ['things'];
  const NameParams = object({ name: ThingNameSchema });

  app.post(
    '/api/v1/things',
    { config: write, schema: { tags, body: object({ name: ThingNameSchema }, { type: RegistryNameSchema, attributes: AttributesSchema, groups: array(RegistryNameSchema, { maxItems: 10 }) }), response: { 201: Thing, ...errors } } },
    async (request, reply) => reply.code(201).send(await deps.things.create(request.body, actorOf(request))),
  );

  app.get(
    '/api/v1/things',
    {
      config: read,
      schema: {
        tags,
        querystring: object(
          {},
          {
            ...PageQuery,
            state: ThingStateSchema,
            type: RegistryNameSchema,
            group: RegistryNameSchema,
            prefix: string({ maxLength: 128 }),
            attribute: array(string({ pattern: '^[^=]+=.*$', maxLength: 1000 }), { maxItems: 10, description: 'key=value; every one must match' }),
          },
        ),
        response: { 200: object({ things: array(Thing), next: nullable(string()) }), ...errors },
      },
    },
    async (request) => {
      const { after, limit = 100, state, type, group, prefix, attribute } = request.query;
      const attributes = Object.fromEntries((attribute ?? []).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
      return deps.things.list({ limit, attributes, ...(after !== undefined && { after }), ...(state !== undefined && { state }), ...(type !== undefined && { type }), ...(group !== undefined && { group }), ...(prefix !== undefined && { namePrefix: prefix }) });
    },
  );

  app.get('/api/v1/things/:name', { config: read, schema: { tags, params: NameParams, response: { 200: Thing, ...errors } } }, async (request) => deps.things.get(request.params.name));

  app.patch(
    '/api/v1/things/:name',
    {
      config: write,
      schema: { tags, params: NameParams, body: object({}, { type: nullable(RegistryNameSchema), attributes: AttributeChangesSchema }), response: { 200: Thing, ...errors } },
    },
    async (request) => deps.things.update(request.params.name, request.body, actorOf(request)),
  );

  app.post(
    '/api/v1/things/:name/state',
    { config: write, schema: { tags, params: NameParams, body: object({ state: ThingStateSchema }, { reason: string({ maxLength: 500 }) }), response: { 200: Thing, ...errors } } },
    async (request) => deps.things.setState(request.params.name, request.body.state, actorOf(request), request.body.reason),
  );

  const typeTags = ['thing types'];
  const TypeParams = object({ name: RegistryNameSchema });
  app.post(
    '/api/v1/thing-types',
    { config: write, schema: { tags: typeTags, body: object({ name: RegistryNameSchema }, { description: string({ maxLength: 1024 }), requireHardwareKey: boolean() }), response: { 201: ThingType, ...errors } } },
    async (request, reply) => reply.code(201).send(await deps.thingTypes.create(request.body, actorOf(request))),
  );
  app.get('/api/v1/thing-types', { config: read, schema: { tags: typeTags, response: { 200: object({ thingTypes: array(ThingType) }), ...errors } } }, async () => ({ thingTypes: await deps.thingTypes.list() }));
  app.get('/api/v1/thing-types/:name', { config: read, schema: { tags: typeTags, params: TypeParams, response: { 200: ThingType, ...errors } } }, async (request) => deps.thingTypes.get(request.params.name));
  app.patch(
    '/api/v1/thing-types/:name',
    { config: write, schema: { tags: typeTags, params: TypeParams, body: object({}, { description: string({ maxLength: 1024 }), requireHardwareKey: boolean() }), response: { 200: ThingType, ...errors } } },
    async (request) => deps.thingTypes.update(request.params.name, request.body, actorOf(request)),
  );
  app.delete('/api/v1/thing-types/:name', { config: write, schema: { tags: typeTags, params: TypeParams, response: { 204: { type: 'null', description: 'Deleted' } as const, ...errors } } }, async (request, reply) => {
    await deps.thingTypes.delete(request.params.name, actorOf(request));
    return reply.code(204).send();
  });

  const groupTags = ['groups'];
  const GroupParams = object({ group: RegistryNameSchema });
  app.post(
    '/api/v1/groups',
    { config: write, schema: { tags: groupTags, body: object({ name: RegistryNameSchema }, { parent: RegistryNameSchema, description: string({ maxLength: 1024 }) }), response: { 201: Group, ...errors } } },
    async (request, reply) => reply.code(201).send(await deps.groups.create(request.body, actorOf(request))),
  );
  app.get('/api/v1/groups', { config: read, schema: { tags: groupTags, response: { 200: object({ groups: array(Group) }), ...errors } } }, async () => ({ groups: await deps.groups.list() }));
  app.get('/api/v1/groups/:group', { config: read, schema: { tags: groupTags, params: GroupParams, response: { 200: Group, ...errors } } }, async (request) => deps.groups.get(request.params.group));
  app.delete('/api/v1/groups/:group', { config: write, schema: { tags: groupTags, params: GroupParams, response: { 204: { type: 'null', description: 'Deleted' } as const, ...errors } } }, async (request, reply) => {
    await deps.groups.delete(request.params.group, actorOf(request));
    return reply.code(204).send();
  });
  const MemberParams = object({ group: RegistryNameSchema, thing: ThingNameSchema });
  app.put('/api/v1/groups/:group/things/:thing', { config: write, schema: { tags: groupTags, params: MemberParams, response: { 200: Group, ...errors } } }, async (request) => {
    await deps.groups.addThing(request.params.group, request.params.thing, actorOf(request));
    return deps.groups.get(request.params.group);
  });
  app.delete('/api/v1/groups/:group/things/:thing', { config: write, schema: { tags: groupTags, params: MemberParams, response: { 200: Group, ...errors } } }, async (request) => {
    await deps.groups.removeThing(request.params.group, request.params.thing, actorOf(request));
    return deps.groups.get(request.params.group);
  });
}

