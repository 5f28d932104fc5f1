import { FleetwardError } from '@fleetward/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CertificateAuthorities } from '../../identity/certificate-authorities.js';
import { serialOf, type Certificates, type IssuedCertificate } from '../../identity/certificates.js';
import { fromPem } from '../../identity/pki/certificate.js';
import { MAX_CSR_BYTES } from '../../identity/pki/csr.js';
import { certsOnly } from '../../identity/pki/pkcs7.js';
import type { ClaimCredential, ClaimProvisioning } from '../../identity/provisioning/claim.js';
import { verifiedClientCertificate } from '../device-certificate.js';
import type { Api } from '../types.js';
import { object } from '../json-schema.js';
import { RegistryNameSchema } from '../identity-schemas.js';

const DEVICE = { access: { kind: 'device' } } as const;
const tags = ['est'];

/**
 * Enrollment over Secure Transport (RFC 7030): `cacerts`, `simpleenroll` (claim by template, with a
 * claim certificate over mutual TLS or an enrollment token as HTTP Basic password, the template
 * as user name) and `simplereenroll` (renewal, with the device's current certificate). Requests and
 * answers are base64 DER, as the RFC specifies.
 */
export function estRoutes(app: Api, deps: { readonly cas: CertificateAuthorities; readonly claims: ClaimProvisioning; readonly certificates: Certificates }): void {
  app.addContentTypeParser('application/pkcs10', { parseAs: 'string', bodyLimit: MAX_CSR_BYTES * 2 }, (_request, body, done) => done(null, body));

  app.get('/.well-known/est/cacerts', { config: DEVICE, schema: { tags } }, async (_request, reply) => {
    const certificates = fromPem((await deps.cas.hierarchy()).chainPem, ['CERTIFICATE']);
    return sendPkcs7(reply, certsOnly(certificates));
  });

  const enroll = async (request: FastifyRequest, reply: FastifyReply, label: string | undefined) => {
    const csr = base64Der(request.body);
    const { template, credential } = claimCredential(request, label, reply);
    const { certificate } = await deps.claims.claim({ template: template ?? (await claimTemplate(deps.certificates, credential)), credential, csr, via: 'est', source: request.ip });
    return sendIssued(reply, certificate);
  };
  app.post('/.well-known/est/simpleenroll', { config: DEVICE, schema: { tags } }, (request, reply) => enroll(request, reply, undefined));
  app.post('/.well-known/est/:template/simpleenroll', { config: DEVICE, schema: { tags, params: object({ template: RegistryNameSchema }) } }, (request, reply) => enroll(request, reply, request.params.template));

  app.post('/.well-known/est/simplereenroll', { config: DEVICE, schema: { tags } }, async (request, reply) => {
    const csr = base64Der(request.body);
    const current = verifiedClientCertificate(request);
    if (current === null) {
      void reply.header('www-authenticate', 'Basic realm="fleetward-est"');
      throw new FleetwardError('FW_ERR_UNAUTHENTICATED', 're-enrollment needs the current device certificate as the TLS client certificate');
    }
    return sendIssued(reply, await deps.certificates.renew({ current, csr, via: 'est', source: request.ip }));
  });
}

/** An enrollment token as HTTP Basic password (user = template), else a verified claim certificate. */
function claimCredential(request: FastifyRequest, label: string | undefined, reply: FastifyReply): { template: string | undefined; credential: ClaimCredential } {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Basic ([A-Za-z0-9+/=]{1,512})$/i.exec(authorization);
    const decoded = match ? Buffer.from(match[1] as string, 'base64').toString('utf8') : '';
    const at = decoded.indexOf(':');
    if (at < 1) throw new FleetwardError('FW_ERR_UNAUTHENTICATED', 'EST authorization must be HTTP Basic with the template as user name and the enrollment token as password');
    const user = decoded.slice(0, at);
    if (label !== undefined && user !== label) throw new FleetwardError('FW_ERR_ENROLLMENT_DENIED', 'the user name must be the template named in the path', { reason: 'other-template' });
    return { template: user, credential: { kind: 'token', token: decoded.slice(at + 1) } };
  }
  const certificate = verifiedClientCertificate(request);
  if (certificate === null) {
    void reply.header('www-authenticate', 'Basic realm="fleetward-est"');
    throw new FleetwardError('FW_ERR_UNAUTHENTICATED', 'enrollment needs a claim certificate (TLS client certificate) or an enrollment token (HTTP Basic password)');
  }
  return { template: label, credential: { kind: 'certificate', certificate } };
}

/** Without a template in the path, a claim certificate names its own. */
async function claimTemplate(certificates: Certificates, credential: ClaimCredential): Promise<string> {
  if (credential.kind !== 'certificate') throw new FleetwardError('FW_ERR_USAGE', 'name the template in the path: /.well-known/est/<template>/simpleenroll');
  const info = await certificates.get(serialOf(credential.certificate)).catch(() => null);
  if (info?.kind !== 'claim' || info.template === null) throw new FleetwardError('FW_ERR_ENROLLMENT_DENIED', 'the client certificate is not a claim certificate', { reason: 'not-a-claim-certificate' });
  return info.template;
}

function base64Der(body: unknown): Buffer {
  const text = typeof body === 'string' ? body.replace(/\s+/g, '') : '';
  if (text === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new FleetwardError('FW_ERR_CSR_MALFORMED', 'the request body must be a base64-encoded DER CSR (Content-Type: application/pkcs10)');
  return Buffer.from(text, 'base64');
}

function sendIssued(reply: FastifyReply, issued: IssuedCertificate) {
  const [leaf] = fromPem(issued.certificatePem, ['CERTIFICATE']);
  return sendPkcs7(reply, certsOnly([leaf as Buffer]));
}

function sendPkcs7(reply: FastifyReply, der: Buffer) {
  return reply
    .type('application/pkcs7-mime; smime-type=certs-only')
    .header('content-transfer-encoding', 'base64')
    .send(`${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n`);
}
