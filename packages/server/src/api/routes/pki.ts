import type { CrlPublisher } from '../../identity/crl-publisher.js';
import type { CertificateAuthorities } from '../../identity/certificate-authorities.js';
import type { OcspResponder } from '../../identity/ocsp-responder.js';
import type { Api } from '../types.js';
import { object, string } from '../json-schema.js';

const PUBLIC = { access: { kind: 'public' } } as const;
const tags = ['pki'];
/** An OCSP request is a few hundred bytes; nothing larger is read. */
const MAX_OCSP_REQUEST_BYTES = 16_384;

/**
 * What relying parties need, without authentication (they are public by nature): the CA chain,
 * each issuing CA's CRL (DER, RFC 5280) and an OCSP responder (RFC 6960, POST and GET).
 */
export function pkiRoutes(app: Api, deps: { readonly cas: CertificateAuthorities; readonly crl: CrlPublisher; readonly ocsp: OcspResponder }): void {
  app.addContentTypeParser('application/ocsp-request', { parseAs: 'buffer', bodyLimit: MAX_OCSP_REQUEST_BYTES }, (_request, body, done) => done(null, body));

  app.get('/pki/ca.pem', { config: PUBLIC, schema: { tags } }, async (_request, reply) => reply.type('application/pem-certificate-chain').send((await deps.cas.hierarchy()).chainPem));

  app.get('/pki/crl', { config: PUBLIC, schema: { tags, description: 'The CRL of the active issuing CA (DER).' } }, async (_request, reply) => {
    const caId = (await deps.cas.hierarchy()).issuing.id;
    return reply.type('application/pkix-crl').send(await deps.crl.crl(caId));
  });

  app.get('/pki/crl/:ca', { config: PUBLIC, schema: { tags, params: object({ ca: string({ pattern: '^[a-f0-9]{32}$' }) }) } }, async (request, reply) =>
    reply.type('application/pkix-crl').send(await deps.crl.crl(request.params.ca)),
  );

  app.post('/pki/ocsp', { config: PUBLIC, schema: { tags } }, async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    return reply.type('application/ocsp-response').send(await deps.ocsp.respond(body));
  });

  // RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER encoding of the OCSPRequest}
  app.get('/pki/ocsp/*', { config: PUBLIC, schema: { tags } }, async (request, reply) => {
    const encoded = decodeURIComponent((request.params as { '*': string })['*']);
    const der = Buffer.from(encoded, 'base64');
    return reply.type('application/ocsp-response').send(await deps.ocsp.respond(der.length > MAX_OCSP_REQUEST_BYTES ? Buffer.alloc(0) : der));
  });
}
