import type { FastifyRequest } from 'fastify';
import { FleetwardError, SEALED_ALG } from '@fleetward/protocol';
import { CLASSIFICATIONS } from '../../data/classification.js';
import { MAX_CONTRACTS_PER_APPLY } from '../../data/data-contracts.js';
import { MAX_QUERY_MESSAGES, type Reader } from '../../data/data-access.js';
import type { DataServices } from '../../data/data-services.js';
import { ThingNameSchema } from '../identity-schemas.js';
import { array, boolean, integer, literal, nullable, object, oneOf, string, unknown, type Schema } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import type { Api } from '../types.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
/** Key custody is for admins, like the CA keys. */
const keys = { access: { kind: 'permission', permission: 'ca:write' } } as const;
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem };
const tags = ['data'];
const Purpose = string({ pattern: '^[a-z][a-z0-9-]{0,63}$', description: 'Why the data is read; one the contracts declare' });
const ContractName = string({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' });
const AnyJson = unknown();
const Fields: Schema<Readonly<Record<string, unknown>>> = { type: 'object', additionalProperties: true, description: 'Field path → minimized value' };
const Scalar: Schema<string | number | boolean> = { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] };

const Summary = object({ name: string(), version: integer(), topic: string(), thingType: nullable(string()), description: string(), fields: integer(), createdAt: Timestamp, createdBy: string() });
const Applied = object({ name: string(), version: integer(), outcome: oneOf(['created', 'unchanged'] as const) });
const Row = object({ messageId: string(), receivedAt: Timestamp, topic: string(), contract: string(), version: integer(), fields: Fields });
const InventoryField = object({ path: string(), classification: oneOf(CLASSIFICATIONS), purposes: array(string()), transform: string(), retention: string(), storage: string(), readers: array(string()) });
const SealingKey = object({ alg: literal(SEALED_ALG), keyId: string(), publicKey: string({ description: 'Raw X25519 public key, base64url' }) });
const SealingKeyInfo = object({ alg: literal(SEALED_ALG), keyId: string(), publicKey: string(), generation: integer(), createdAt: Timestamp, active: boolean() });
const Inventory = object({
  generatedAt: Timestamp,
  storage: string(),
  unreadDays: integer(),
  contracts: array(object({ contract: string(), version: integer(), thingType: nullable(string()), topic: string(), description: string(), fields: array(InventoryField) })),
  unclassified: array(object({ thingType: nullable(string()), topic: string(), outcome: string(), count: integer(), firstSeenAt: Timestamp, lastSeenAt: Timestamp })),
  unread: array(object({ contract: string(), field: string(), classification: oneOf(CLASSIFICATIONS), purposes: array(string()), lastReadAt: nullable(Timestamp) })),
});

/** Rule 9: data contracts, purpose-bound reads, detokenization, erasure and the privacy inventory. */
export function dataRoutes(app: Api, deps: { readonly data: DataServices }): void {
  const { data } = deps;
  app.get('/api/v1/data/contracts', { config: read, schema: { tags, description: 'The version in force of every data contract.', response: { 200: object({ contracts: array(Summary) }), ...errors } } }, async () => ({
    contracts: await data.contracts.list(),
  }));
  app.post(
    '/api/v1/data/contracts',
    {
      config: write,
      schema: {
        tags,
        description: 'Applies contract documents, all or none. An existing version must be identical; a new version must be higher than the latest.',
        body: object({ contracts: array(AnyJson, { minItems: 1, maxItems: MAX_CONTRACTS_PER_APPLY }) }),
        response: { 200: object({ applied: array(Applied) }), ...errors },
      },
    },
    async (request) => ({ applied: await data.contracts.apply(request.body.contracts, actorOf(request)) }),
  );
  app.get(
    '/api/v1/data/contracts/:name',
    {
      config: read,
      schema: { tags, params: object({ name: ContractName }), querystring: object({}, { version: integer({ minimum: 1 }) }), response: { 200: object({ summary: Summary, document: AnyJson, versions: array(integer()) }), ...errors } },
    },
    async (request) => data.contracts.get(request.params.name, request.query.version),
  );
  app.get(
    '/api/v1/data/things/:thing',
    {
      config: read,
      schema: {
        tags,
        description: "A thing's stored telemetry, newest first, for a declared purpose: fields not declared for it, or above the caller's clearance, are withheld. Reads of personal or sensitive fields are audited.",
        params: object({ thing: ThingNameSchema }),
        querystring: object({}, { purpose: Purpose, since: Timestamp, limit: integer({ minimum: 1, maximum: MAX_QUERY_MESSAGES }) }),
        response: { 200: object({ thing: string(), purpose: string(), rows: array(Row), withheld: array(string()) }), ...errors },
      },
    },
    async (request) => {
      const { purpose, since, limit } = request.query;
      return data.access.query({ thing: request.params.thing, purpose, ...(since !== undefined && { since }), ...(limit !== undefined && { limit }) }, readerOf(request));
    },
  );
  app.post(
    '/api/v1/data/detokenize',
    {
      config: read,
      schema: {
        tags,
        description: 'The original value behind a token, for a purpose its field declares. Needs the detokenize grant (admins by default); every attempt is audited.',
        body: object({ token: string({ pattern: '^tk_[A-Za-z0-9_-]{22}$' }) }, { purpose: Purpose }),
        response: { 200: object({ token: string(), value: Scalar, thing: string(), contract: string(), field: string() }), ...errors },
      },
    },
    async (request) => data.access.detokenize(request.body.token, request.body.purpose, readerOf(request)),
  );
  app.post(
    '/api/v1/data/things/:thing/purge',
    {
      config: write,
      schema: { tags, description: "Erases every stored row and token-vault entry of one thing (right to erasure); answers with the counts.", params: object({ thing: ThingNameSchema }), response: { 200: object({ thing: string(), rows: integer(), vaultEntries: integer() }), ...errors } },
    },
    async (request) => data.retention.purgeThing(request.params.thing, actorOf(request)),
  );
  app.get(
    '/api/v1/data/inventory',
    {
      config: read,
      schema: { tags, description: 'The privacy inventory: fields collected per thing type and topic, with class, purposes, transform, retention, storage and readers; topics collected without a contract; fields no purpose has read in `unreadDays`.', querystring: object({}, { unreadDays: integer({ minimum: 1, maximum: 3650 }) }), response: { 200: Inventory, ...errors } },
    },
    async (request) => data.inventory(request.query.unreadDays ?? 30),
  );
  app.get(
    '/api/v1/data/sealing-key',
    {
      config: read,
      schema: { tags, description: 'The backend sealing key devices seal local data to (made on first use), and every older key ingest still opens with.', response: { 200: object({ current: SealingKey, keys: array(SealingKeyInfo) }), ...errors } },
    },
    async () => ({ current: await data.sealing.current(), keys: await data.sealing.list() }),
  );
  app.post(
    '/api/v1/data/sealing-key/rotate',
    {
      config: keys,
      schema: { tags, description: 'Makes a new backend sealing key active (admins). Older keys stay, so whatever devices sealed before still opens. Audited.', response: { 200: object({ previous: nullable(string()), active: SealingKeyInfo }), ...errors } },
    },
    async (request) => data.sealing.rotate(actorOf(request)),
  );
}

/** The caller as a purpose-bound reader: its audit actor and the role whose clearance applies. */
export function readerOf(request: FastifyRequest): Reader {
  if (request.principal === null) throw new FleetwardError('FW_ERR_UNAUTHENTICATED', 'an operator token is required');
  return { actor: actorOf(request), role: request.principal.role };
}
