import { childrenOf, DerError, expectTag, oid, parseOne, readOid, readString, sequence, setOf, Tag, utf8String, type Tlv } from './der.js';
import { Oid } from './oids.js';

/** An X.501 Name: one attribute per RDN, in order, values as UTF8String (RFC 5280 §4.1.2.4). */
export function distinguishedName(attributes: readonly (readonly [keyof typeof ATTRIBUTE_OIDS, string])[]): Buffer {
  return sequence(...attributes.map(([type, value]) => setOf(sequence(oid(ATTRIBUTE_OIDS[type]), utf8String(value)))));
}

const ATTRIBUTE_OIDS = { CN: Oid.commonName, O: Oid.organizationName } as const;

/** The common name of a Name, if it has exactly one; several are ambiguous and refused. */
export function commonNameOf(name: Tlv): string | null {
  const names: string[] = [];
  for (const rdn of childrenOf(expectTag(name, Tag.Sequence, 'Name'), 32)) {
    for (const attribute of childrenOf(expectTag(rdn, Tag.Set, 'RDN'), 8)) {
      const [type, value] = childrenOf(expectTag(attribute, Tag.Sequence, 'AttributeTypeAndValue'), 2);
      if (type === undefined || value === undefined) throw new DerError('attribute without a value');
      if (readOid(type) === Oid.commonName) names.push(readString(value));
    }
  }
  if (names.length > 1) throw new DerError('more than one common name');
  return names[0] ?? null;
}

export function commonNameOfDer(name: Buffer): string | null {
  return commonNameOf(parseOne(name, Tag.Sequence));
}
