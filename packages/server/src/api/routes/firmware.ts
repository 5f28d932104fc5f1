import type { Readable } from 'node:stream';
import { FleetwardError } from '@fleetward/protocol';
import { publishTargets } from '../../updates/publish-targets.js';
import type { UpdateServices } from '../../updates/update-services.js';
import { array, boolean, integer, nullable, object, string, unknown } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import type { Api } from '../types.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const tags = ['updates'];

const Artifact = object({
  target: string(),
  name: string(),
  version: string(),
  securityVersion: integer(),
  sha256: string(),
  size: integer(),
  hardware: array(string()),
  releaseNotes: nullable(string()),
  securityRelease: boolean(),
  hasSbom: boolean(),
  signed: boolean(),
  createdAt: Timestamp,
  createdBy: string(),
});
const Role = nullable(object({ version: integer(), expires: string() }));
const Status = object({
  root: nullable(object({ version: integer(), expires: string(), rootThreshold: integer(), rootKeys: array(string()), targetsThreshold: integer(), targetsKeys: array(string()) })),
  targets: nullable(object({ version: integer(), expires: string(), count: integer() })),
  snapshot: Role,
  timestamp: Role,
});
const Software = object({ thing: string(), firmwareVersion: string(), securityVersion: nullable(integer()), imageHash: nullable(string()), agentVersion: string(), authorized: boolean(), reportedAt: Timestamp });
const Metadata = object({ signed: unknown(), signatures: array(unknown()) });
const UploadQuery = object(
  { name: string({ minLength: 1, maxLength: 64 }), version: string({ minLength: 1, maxLength: 64 }), securityVersion: integer({ minimum: 0, maximum: 2_147_483_647 }), hardware: string({ minLength: 1, maxLength: 2048 }) },
  { securityRelease: boolean(), releaseNotes: string({ maxLength: 8192 }) },
);

/**
 * Firmware artifacts, the TUF repository's offline-signing workflow and the software inventory
 * (rule 4), for operators. Artifacts are uploaded as the raw body (application/octet-stream) with
 * their description in the query; an SBOM is attached with its own request.
 */
export function firmwareRoutes(app: Api, deps: { readonly updates: UpdateServices }): void {
  const { artifacts, repository, inventory } = deps.updates;
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.get('/api/v1/firmware', { config: read, schema: { tags, response: { 200: object({ artifacts: array(Artifact) }), ...authenticatedErrors } } }, async () => ({ artifacts: await artifacts.list() }));
  app.get('/api/v1/firmware/:target', { config: read, schema: { tags, params: object({ target: string({ maxLength: 130 }) }), response: { 200: Artifact, 404: Problem, ...authenticatedErrors } } }, async (request) => {
    const artifact = await artifacts.get(request.params.target);
    if (artifact === null) throw new FleetwardError('FW_ERR_NOT_FOUND', `no artifact ${request.params.target}`);
    return artifact;
  });
  app.get('/api/v1/firmware/:target/sbom', { config: read, schema: { tags, params: object({ target: string({ maxLength: 130 }) }), response: { 200: unknown(), 404: Problem, ...authenticatedErrors } } }, async (request) => artifacts.sbom(request.params.target));
  app.post(
    '/api/v1/firmware',
    { config: write, bodyLimit: Number.MAX_SAFE_INTEGER, schema: { tags, querystring: UploadQuery, response: { 201: Artifact, 409: Problem, 413: Problem, ...authenticatedErrors } } },
    async (request, reply) => {
      if (request.headers['content-type'] !== 'application/octet-stream') throw new FleetwardError('FW_ERR_UNSUPPORTED_MEDIA_TYPE', 'upload the artifact as application/octet-stream');
      const q = request.query;
      const sbom = request.headers['x-fleetward-sbom'];
      const artifact = await artifacts.add(
        request.body as Readable,
        {
          name: q.name,
          version: q.version,
          securityVersion: q.securityVersion,
          hardware: q.hardware.split(','),
          ...(q.releaseNotes !== undefined && { releaseNotes: q.releaseNotes }),
          ...(q.securityRelease !== undefined && { securityRelease: q.securityRelease }),
          ...(typeof sbom === 'string' && { sbom: Buffer.from(sbom, 'base64').toString('utf8') }),
        },
        actorOf(request),
      );
      return reply.code(201).send(artifact);
    },
  );

  app.get('/api/v1/updates/repository', { config: read, schema: { tags, response: { 200: Status, ...authenticatedErrors } } }, async () => repository.status());
  app.post(
    '/api/v1/updates/root/proposal',
    {
      config: write,
      schema: {
        tags,
        body: object({ rootKeys: array(unknown(), { minItems: 1, maxItems: 16 }), rootThreshold: integer({ minimum: 1 }), targetsKeys: array(unknown(), { minItems: 1, maxItems: 16 }), targetsThreshold: integer({ minimum: 1 }) }, { expiresDays: integer({ minimum: 1, maximum: 3650 }) }),
        response: { 200: Metadata, ...authenticatedErrors },
      },
    },
    async (request) => repository.proposeRoot({ ...request.body, expiresDays: request.body.expiresDays ?? 365 }),
  );
  app.put('/api/v1/updates/root', { config: write, schema: { tags, body: Metadata, response: { 200: Status, 409: Problem, ...authenticatedErrors } } }, async (request) => repository.importRoot(request.body, actorOf(request)));
  app.post(
    '/api/v1/updates/targets/proposal',
    { config: write, schema: { tags, body: object({}, { expiresDays: integer({ minimum: 1, maximum: 3650 }) }), response: { 200: Metadata, 409: Problem, ...authenticatedErrors } } },
    async (request) => repository.proposeTargets(request.body.expiresDays ?? 90),
  );
  app.put(
    '/api/v1/updates/targets',
    { config: write, schema: { tags, body: Metadata, response: { 200: object({ status: Status, securityDeployments: array(object({ target: string(), deployment: nullable(string()), blocked: integer() })) }), 409: Problem, ...authenticatedErrors } } },
    async (request) => publishTargets(deps.updates, request.body, actorOf(request)),
  );

  app.get(
    '/api/v1/updates/inventory',
    {
      config: read,
      schema: {
        tags,
        querystring: object({}, { version: string({ maxLength: 64 }), unauthorized: boolean(), limit: integer({ minimum: 1, maximum: 10_000 }) }),
        response: { 200: object({ summary: object({ devices: integer(), unauthorized: integer(), byVersion: array(object({ firmwareVersion: string(), securityVersion: nullable(integer()), devices: integer() })) }), devices: array(Software) }), ...authenticatedErrors },
      },
    },
    async (request) => ({ summary: await inventory.summary(), devices: await inventory.list(request.query) }),
  );
}
