import type { Certificates } from '../../identity/certificates.js';
import type { Api } from '../types.js';
import { fromParsedJson } from '../../json.js';
import { array, integer, nullable, object, oneOf, string } from '../json-schema.js';
import { AttestationSchema, CertificateInfo, IssuedCertificate, KeyStorageSchema, PageQuery, RevocationReasonSchema, SerialSchema, ThingNameSchema } from '../identity-schemas.js';
import { authenticatedErrors, Problem } from '../schemas.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem };
const tags = ['certificates'];

/** Issuing device certificates from CSRs, listing, revoking and asking devices to rotate. */
export function certificateRoutes(app: Api, deps: { readonly certificates: Certificates }): void {
  app.post(
    '/api/v1/things/:name/certificates',
    {
      config: write,
      schema: {
        tags,
        description: "Issues a certificate from the device's CSR (PEM). The CSR's subject CN must be the thing name; the private key never leaves the device.",
        params: object({ name: ThingNameSchema }),
        body: object({ csr: string({ maxLength: 32_768 }) }, { keyStorage: KeyStorageSchema, attestation: AttestationSchema, validityDays: integer({ minimum: 1, maximum: 397 }) }),
        response: { 201: IssuedCertificate, ...errors },
      },
    },
    async (request, reply) => {
      const { csr, keyStorage, attestation, validityDays } = request.body;
      const issued = await deps.certificates.issue(
        {
          subject: request.params.name,
          kind: 'device',
          csr,
          via: 'operator',
          ...(keyStorage !== undefined && { keyStorage }),
          ...(attestation !== undefined && { attestation: fromParsedJson(attestation) }),
          ...(validityDays !== undefined && { validityDays }),
        },
        actorOf(request),
      );
      return reply.code(201).send(issued);
    },
  );

  app.get(
    '/api/v1/certificates',
    {
      config: read,
      schema: {
        tags,
        querystring: object({}, { ...PageQuery, thing: ThingNameSchema, status: oneOf(['active', 'revoked'] as const), kind: oneOf(['device', 'claim'] as const) }),
        response: { 200: object({ certificates: array(CertificateInfo), next: nullable(string()) }), ...errors },
      },
    },
    async (request) => {
      const { after, limit = 100, thing, status, kind } = request.query;
      return deps.certificates.list({ limit, ...(after !== undefined && { after }), ...(thing !== undefined && { thing }), ...(status !== undefined && { status }), ...(kind !== undefined && { kind }) });
    },
  );

  const SerialParams = object({ serial: SerialSchema });
  app.get('/api/v1/certificates/:serial', { config: read, schema: { tags, params: SerialParams, response: { 200: CertificateInfo, ...errors } } }, async (request) => deps.certificates.get(request.params.serial));

  app.post(
    '/api/v1/certificates/:serial/revoke',
    { config: write, schema: { tags, description: 'Revocation is final.', params: SerialParams, body: object({ reason: RevocationReasonSchema }), response: { 200: CertificateInfo, ...errors } } },
    async (request) => deps.certificates.revoke(request.params.serial, request.body.reason, actorOf(request)),
  );

  app.post(
    '/api/v1/things/:name/certificates/revoke',
    { config: write, schema: { tags, description: 'Revokes every active certificate of the thing.', params: object({ name: ThingNameSchema }), body: object({ reason: RevocationReasonSchema }), response: { 200: object({ revoked: array(string()) }), ...errors } } },
    async (request) => ({ revoked: await deps.certificates.revokeThing(request.params.name, request.body.reason, actorOf(request)) }),
  );

  app.post(
    '/api/v1/certificates/:serial/rotate',
    { config: write, schema: { tags, description: 'Marks the certificate "must rotate"; the device is told to renew it with a new key.', params: SerialParams, response: { 200: CertificateInfo, ...errors } } },
    async (request) => deps.certificates.requestRotation(request.params.serial, actorOf(request)),
  );
}
