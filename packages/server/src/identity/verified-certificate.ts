import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/**
 * A client certificate its TLS handshake verified. Admission reads the serial and validity the
 * handshake already parsed; the X509Certificate is built only when something asks for it (a
 * registered third-party CA's device, a renewal or provisioning request). Node's
 * `getPeerX509Certificate` copies the certificate through DER and decodes its key again on every
 * connection: 130–250 µs a connect measured here, against 45–60 µs for `getPeerCertificate(false)`.
 */
export class VerifiedCertificate {
  /** Hexadecimal, as X509Certificate gives it. */
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly validTo: string;
  /** DER. */
  readonly raw: Buffer;
  #x509: X509Certificate | undefined;

  private constructor(fields: { readonly serialNumber: string; readonly validFrom: string; readonly validTo: string; readonly raw: Buffer }, x509?: X509Certificate) {
    this.serialNumber = fields.serialNumber;
    this.validFrom = fields.validFrom;
    this.validTo = fields.validTo;
    this.raw = fields.raw;
    this.#x509 = x509;
  }

  /** The certificate a socket's peer presented, if its handshake verified one. */
  static ofSocket(socket: TLSSocket): VerifiedCertificate | undefined {
    if (!socket.authorized) return undefined;
    const peer = socket.getPeerCertificate(false);
    // An empty object when the peer sent none.
    if (!Buffer.isBuffer(peer.raw)) return undefined;
    return new VerifiedCertificate({ serialNumber: peer.serialNumber, validFrom: peer.valid_from, validTo: peer.valid_to, raw: peer.raw });
  }

  /** One already parsed (an API request's client certificate). */
  static fromX509(x509: X509Certificate): VerifiedCertificate {
    return new VerifiedCertificate({ serialNumber: x509.serialNumber, validFrom: x509.validFrom, validTo: x509.validTo, raw: x509.raw }, x509);
  }

  get x509(): X509Certificate {
    this.#x509 ??= new X509Certificate(this.raw);
    return this.#x509;
  }

  /** As X509Certificate renders it (parses the certificate if nothing did yet). */
  get issuer(): string {
    return this.x509.issuer;
  }
}
