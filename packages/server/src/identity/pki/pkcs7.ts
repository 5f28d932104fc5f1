import { explicit, implicitConstructed, integer, oid, sequence, setOf } from './der.js';

const SIGNED_DATA = '1.2.840.113549.1.7.2';
const DATA = '1.2.840.113549.1.7.1';

/**
 * A "certs-only" CMS SignedData (RFC 5652 §5, RFC 7030 §4.1.3/§4.2.3): a bag of certificates with
 * no signature, as EST returns issued certificates and CA certificates.
 */
export function certsOnly(certificates: readonly Buffer[]): Buffer {
  const signedData = sequence(
    integer(1),
    setOf(),
    sequence(oid(DATA)),
    implicitConstructed(0, Buffer.concat([...certificates].sort((a, b) => Buffer.compare(a, b)))),
    setOf(),
  );
  return sequence(oid(SIGNED_DATA), explicit(0, signedData));
}
