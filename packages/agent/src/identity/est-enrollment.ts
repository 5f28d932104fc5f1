import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { FleetwardError, isErrorCode } from '@fleetward/protocol';
import { certificateRequestPem } from './certificate-request.js';
import { caCertificates } from './device-credentials.js';
import type { DeviceKey } from './device-key.js';

export interface TokenEnrollment {
  /** The node's base URL, `https://host:port`. */
  readonly estUrl: string;
  readonly caPem: string;
  readonly template: string;
  readonly token: string;
  readonly thing: string;
}

const MAX_RESPONSE_BYTES = 65_536;

/**
 * Provisioning with a one-time enrollment token over EST (RFC 7030 simpleenroll): HTTP Basic with
 * the template as user name and the token as password, over TLS that trusts only the platform's CA.
 * Returns the device certificate followed by the issuing CA that signed it.
 */
export async function enrollWithToken(enrollment: TokenEnrollment, key: DeviceKey): Promise<string> {
  const csrPem = await certificateRequestPem(enrollment.thing, key);
  const csrBase64 = csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const url = new URL(`/.well-known/est/${encodeURIComponent(enrollment.template)}/simpleenroll`, enrollment.estUrl);
  const { status, body } = await post(url, enrollment.caPem, `Basic ${Buffer.from(`${enrollment.template}:${enrollment.token}`).toString('base64')}`, csrBase64);
  if (status !== 200) {
    let problem: { code?: unknown; detail?: unknown } = {};
    try {
      problem = JSON.parse(body.toString()) as typeof problem;
    } catch {
      // not problem+json: report the status alone
    }
    const code = isErrorCode(problem.code) ? problem.code : 'FW_ERR_ENROLLMENT_DENIED';
    throw new FleetwardError(code, `enrollment refused (HTTP ${status}${typeof problem.detail === 'string' ? `: ${problem.detail}` : ''})`, { status });
  }
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const [issued] = new x509.X509Certificates(Buffer.from(body.toString('ascii').replace(/\s+/g, ''), 'base64'));
  if (issued === undefined) throw new FleetwardError('FW_ERR_REMOTE', 'the enrollment answer holds no certificate');
  const certificate = new X509Certificate(Buffer.from(issued.rawData));
  const issuer = caCertificates(enrollment.caPem).find((ca) => certificate.checkIssued(ca) && certificate.verify(ca.publicKey));
  if (issuer === undefined) throw new FleetwardError('FW_ERR_REMOTE', 'the enrolled certificate was not issued by the platform CA the agent trusts');
  return `${certificate.toString()}${issuer.toString()}`;
}

function post(url: URL, caPem: string, authorization: string, body: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca: caPem, minVersion: 'TLSv1.2', headers: { 'content-type': 'application/pkcs10', 'content-transfer-encoding': 'base64', authorization }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new FleetwardError('FW_ERR_REMOTE', 'the enrollment answer is too large'));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new FleetwardError('FW_ERR_NOT_READY', 'the enrollment request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
