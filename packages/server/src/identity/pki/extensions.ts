import { isIP } from 'node:net';
import { bitString, boolean, explicit, implicitConstructed, implicitPrimitive, integer, octetString, oid, sequence } from './der.js';
import { Oid } from './oids.js';

/** One Extension: extnID, critical (omitted when false, as DER requires), extnValue. */
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** RFC 5280 §4.2.1.9; always critical. */
export function basicConstraints(ca: boolean, pathLength?: number): Buffer {
  const fields = ca ? [boolean(true), ...(pathLength === undefined ? [] : [integer(pathLength)])] : [];
  return extension(Oid.basicConstraints, true, sequence(...fields));
}

export const KeyUsage = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

/** RFC 5280 §4.2.1.3: a named bit list, critical; DER drops trailing zero bits. */
export function keyUsage(bits: readonly (keyof typeof KeyUsage)[]): Buffer {
  const highest = Math.max(...bits.map((b) => KeyUsage[b]));
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(KeyUsage[bit] / 8)] = (bytes[Math.floor(KeyUsage[bit] / 8)] as number) | (0x80 >> KeyUsage[bit] % 8);
  const unused = 7 - (highest % 8);
  return extension(Oid.keyUsage, true, bitString(bytes, unused));
}

export function extendedKeyUsage(purposes: readonly string[]): Buffer {
  return extension(Oid.extKeyUsage, false, sequence(...purposes.map((p) => oid(p))));
}

export type GeneralName = { readonly uri: string } | { readonly dns: string } | { readonly ip: string };

function generalName(name: GeneralName): Buffer {
  if ('uri' in name) return implicitPrimitive(6, Buffer.from(name.uri, 'ascii'));
  if ('dns' in name) return implicitPrimitive(2, Buffer.from(name.dns, 'ascii'));
  const bytes = isIP(name.ip) === 4 ? Buffer.from(name.ip.split('.').map(Number)) : ipv6Bytes(name.ip);
  return implicitPrimitive(7, bytes);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const left = head.split(':').filter(Boolean);
  const right = address.includes('::') ? tail.split(':').filter(Boolean) : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

export function subjectAltName(names: readonly GeneralName[]): Buffer {
  return extension(Oid.subjectAltName, false, sequence(...names.map(generalName)));
}

export function subjectKeyIdentifier(keyId: Buffer): Buffer {
  return extension(Oid.subjectKeyIdentifier, false, octetString(keyId));
}

export function authorityKeyIdentifier(keyId: Buffer): Buffer {
  return extension(Oid.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyId)));
}

/** One distribution point per URL, each a fullName (RFC 5280 §4.2.1.13). */
export function crlDistributionPoints(urls: readonly string[]): Buffer {
  return extension(Oid.cRLDistributionPoints, false, sequence(...urls.map((url) => sequence(explicit(0, implicitConstructed(0, implicitPrimitive(6, Buffer.from(url, 'ascii'))))))));
}

export function authorityInfoAccess(access: { readonly ocsp?: string; readonly caIssuers?: string }): Buffer {
  const methods: Buffer[] = [];
  if (access.ocsp !== undefined) methods.push(sequence(oid(Oid.ocsp), implicitPrimitive(6, Buffer.from(access.ocsp, 'ascii'))));
  if (access.caIssuers !== undefined) methods.push(sequence(oid(Oid.caIssuers), implicitPrimitive(6, Buffer.from(access.caIssuers, 'ascii'))));
  return extension(Oid.authorityInfoAccess, false, sequence(...methods));
}
