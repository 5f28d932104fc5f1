import { bitString, enumerated, explicit, implicitPrimitive, integer, octetString, oid, sequence, time } from './der.js';
import { Oid } from './oids.js';
import type { Signer } from './signer.js';

export interface RevokedEntry {
  /** Lower-case hex. */
  readonly serial: string;
  readonly revokedAt: Date;
  /** RFC 5280 §5.3.1 CRLReason code; 0 (unspecified) is left out, as the RFC asks. */
  readonly reason: number;
}

export interface CrlFields {
  /** The issuing CA's Subject, DER. */
  readonly issuer: Buffer;
  readonly authorityKeyId: Buffer;
  /** Monotonically increasing per CA (RFC 5280 §5.2.3). */
  readonly number: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly revoked: readonly RevokedEntry[];
}

/** A v2 CRL (RFC 5280 §5.1), signed by the CA that issued the certificates it lists. */
export async function buildCrl(fields: CrlFields, signer: Signer): Promise<Buffer> {
  const entries = fields.revoked.map((entry) =>
    entry.reason === 0
      ? sequence(integer(Buffer.from(entry.serial, 'hex')), time(entry.revokedAt))
      : sequence(integer(Buffer.from(entry.serial, 'hex')), time(entry.revokedAt), sequence(sequence(oid(Oid.reasonCode), octetString(enumerated(entry.reason))))),
  );
  const tbs = sequence(
    integer(1),
    signer.algorithm,
    fields.issuer,
    time(fields.thisUpdate),
    time(fields.nextUpdate),
    ...(entries.length > 0 ? [sequence(...entries)] : []),
    explicit(
      0,
      sequence(
        sequence(oid(Oid.authorityKeyIdentifier), octetString(sequence(implicitPrimitive(0, fields.authorityKeyId)))),
        sequence(oid(Oid.cRLNumber), octetString(integer(fields.number))),
      ),
    ),
  );
  return sequence(tbs, signer.algorithm, bitString(await signer.sign(tbs)));
}
