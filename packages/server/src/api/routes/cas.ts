import type { CaSummary } from '../../identity/ca-repository.js';
import type { IssuingCaOperations } from '../../identity/ca-rotation.js';
import type { ThirdPartyCas } from '../../identity/third-party-cas.js';
import { RegistryNameSchema } from '../identity-schemas.js';
import type { Api } from '../types.js';
import { array, boolean, integer, object, oneOf, string } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import { actorOf } from './operators.js';

const CaInfo = object({
  id: string(),
  role: oneOf(['root', 'issuing', 'external'] as const),
  status: oneOf(['active', 'retired'] as const),
  subject: string(),
  serial: string(),
  keyAlgorithm: string(),
  notBefore: Timestamp,
  notAfter: Timestamp,
  keyOnline: boolean(),
  pem: string(),
});

const Rotation = object({ previous: string(), current: string(), rotationRequested: integer() });

/** The CA hierarchy: anyone with fleet:read sees it; rotating the issuing CA is for admins (ca:write). */
export function caRoutes(
  app: Api,
  deps: { readonly caSummaries: () => Promise<CaSummary[]>; readonly issuingCa: IssuingCaOperations; readonly thirdPartyCas: ThirdPartyCas },
): void {
  const tags = ['certificate authorities'];
  app.get('/api/v1/cas', { config: { access: { kind: 'permission', permission: 'fleet:read' } }, schema: { tags, response: { 200: object({ cas: array(CaInfo) }), ...authenticatedErrors } } }, async () => ({ cas: await deps.caSummaries() }));
  app.post(
    '/api/v1/cas/rotate-issuing',
    {
      config: { access: { kind: 'permission', permission: 'ca:write' } },
      schema: {
        tags,
        description: 'Creates a new issuing CA signed by the root; the previous one is retired but stays trusted while its certificates are in use. requestRotation marks its device certificates "must rotate".',
        body: object({}, { requestRotation: boolean() }),
        response: { 200: Rotation, 409: Problem, ...authenticatedErrors },
      },
    },
    async (request) => deps.issuingCa.rotate(actorOf(request), { requestRotation: request.body.requestRotation === true }),
  );
  offlineRootRoutes(app, deps.issuingCa);

  const admin = { access: { kind: 'permission', permission: 'ca:write' } } as const;
  app.post(
    '/api/v1/cas/registration-code',
    { config: admin, schema: { tags, description: 'A code to sign as the CN of a verification certificate, proving possession of a third-party CA key (valid 24 h, once).', response: { 201: object({ code: string(), expiresAt: Timestamp }), ...authenticatedErrors } } },
    async (_request, reply) => reply.code(201).send(await deps.thirdPartyCas.registrationCode()),
  );
  app.post(
    '/api/v1/cas/register',
    {
      config: admin,
      schema: {
        tags,
        description: "Registers a third-party CA. verificationCertificate: signed by that CA, CN = a registration code. template: devices with its certificates are registered just in time from it.",
        body: object({ caCertificate: string({ maxLength: 16_384 }), verificationCertificate: string({ maxLength: 16_384 }) }, { template: RegistryNameSchema }),
        response: { 201: CaInfo, 409: Problem, ...authenticatedErrors },
      },
    },
    async (request, reply) => {
      const { caCertificate, verificationCertificate, template } = request.body;
      return reply.code(201).send(await deps.thirdPartyCas.register({ caPem: caCertificate, verificationPem: verificationCertificate, ...(template !== undefined && { template }) }, actorOf(request)));
    },
  );
  app.post('/api/v1/cas/:id/deregister', { config: admin, schema: { tags, params: object({ id: string({ pattern: '^[a-f0-9]{32}$' }) }), response: { 200: object({ deregistered: string() }), 404: Problem, ...authenticatedErrors } } }, async (request) => {
    await deps.thirdPartyCas.deregister(request.params.id, actorOf(request));
    return { deregistered: request.params.id };
  });
}

/** Rotation under an offline root: the node makes the key and CSR, the offline root signs, the node imports. */
function offlineRootRoutes(app: Api, issuingCa: IssuingCaOperations): void {
  const tags = ['certificate authorities'];
  const admin = { access: { kind: 'permission', permission: 'ca:write' } } as const;
  app.post(
    '/api/v1/cas/issuing-request',
    {
      config: admin,
      schema: {
        tags,
        description: 'With an offline root: makes the key of the next issuing CA in custody and returns its CSR, to be signed offline with `fleetward ca sign-issuing`.',
        response: { 201: object({ id: string(), csrPem: string(), keyFingerprint: string() }), 409: Problem, ...authenticatedErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await issuingCa.request(actorOf(request))),
  );
  app.post(
    '/api/v1/cas/import-issuing',
    {
      config: admin,
      schema: {
        tags,
        description: 'With an offline root: makes the signed certificate of a requested issuing CA the active one; the previous one is retired as in a rotation.',
        body: object({ certificate: string({ maxLength: 16_384 }) }, { requestRotation: boolean() }),
        response: { 200: Rotation, 404: Problem, 409: Problem, ...authenticatedErrors },
      },
    },
    async (request) => issuingCa.import(request.body.certificate, actorOf(request), { requestRotation: request.body.requestRotation === true }),
  );
}
