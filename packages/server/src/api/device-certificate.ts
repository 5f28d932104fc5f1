import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';

/**
 * The client certificate of a request, when TLS verified it against Fleetward's CA chain (validity
 * dates included); null when none was sent or it did not verify. Revocation and registry state
 * are checked by the domain, not here.
 */
export function verifiedClientCertificate(request: FastifyRequest): X509Certificate | null {
  const socket = request.raw.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return null;
  const peer = socket.getPeerCertificate(false);
  if (!peer.raw) return null;
  return new X509Certificate(peer.raw);
}
