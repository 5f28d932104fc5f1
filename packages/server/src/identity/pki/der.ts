/**
 * A small DER codec (ITU-T X.690), enough for X.509 certificates, CSRs and CRLs. The decoder is
 * strict, as DER requires: definite minimal lengths, single-byte tags, no trailing bytes; anything
 * else is a DerError. It never reads outside its input, so untrusted CSRs can be parsed safely.
 */
export class DerError extends Error {
  override readonly name = 'DerError';
}

export const Tag = {
  Boolean: 0x01,
  Integer: 0x02,
  BitString: 0x03,
  OctetString: 0x04,
  Null: 0x05,
  Oid: 0x06,
  Enumerated: 0x0a,
  Utf8String: 0x0c,
  PrintableString: 0x13,
  Ia5String: 0x16,
  UtcTime: 0x17,
  GeneralizedTime: 0x18,
  Sequence: 0x30,
  Set: 0x31,
} as const;

// ---- encoding ----------------------------------------------------------------------------

export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const sequence = (...items: readonly Uint8Array[]): Buffer => tlv(Tag.Sequence, Buffer.concat(items));

/** SET OF: DER orders the elements by their encodings (X.690 §11.6). */
export const setOf = (...items: readonly Uint8Array[]): Buffer => tlv(Tag.Set, Buffer.concat([...items].sort((a, b) => Buffer.compare(a, b))));

export const nullValue = (): Buffer => Buffer.from([Tag.Null, 0]);

export const boolean = (value: boolean): Buffer => tlv(Tag.Boolean, Buffer.from([value ? 0xff : 0]));

/** A non-negative INTEGER from its big-endian magnitude (or a small number), minimally encoded. */
export function integer(value: Uint8Array | number): Buffer {
  let bytes = typeof value === 'number' ? numberBytes(value) : Buffer.from(value);
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  return tlv(Tag.Integer, (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function numberBytes(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new DerError(`cannot encode ${value} as a non-negative integer`);
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from(bytes.length > 0 ? bytes : [0]);
}

export function enumerated(value: number): Buffer {
  return tlv(Tag.Enumerated, integer(value).subarray(2));
}

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new DerError(`bad OID ${dotted}`);
  const bytes = [40 * (arcs[0] as number) + (arcs[1] as number)];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  const encoded = tlv(Tag.Oid, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

export const utf8String = (text: string): Buffer => tlv(Tag.Utf8String, Buffer.from(text, 'utf8'));
export const ia5String = (text: string): Buffer => tlv(Tag.Ia5String, Buffer.from(text, 'ascii'));
export const octetString = (bytes: Uint8Array): Buffer => tlv(Tag.OctetString, bytes);
export const bitString = (bytes: Uint8Array, unusedBits = 0): Buffer => tlv(Tag.BitString, Buffer.concat([Buffer.from([unusedBits]), bytes]));

/** Time as RFC 5280 §4.1.2.5 wants it: UTCTime through 2049, GeneralizedTime from 2050, whole seconds. */
export function time(date: Date): Buffer {
  const iso = date.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return date.getUTCFullYear() < 2050 ? tlv(Tag.UtcTime, Buffer.from(digits.slice(2), 'ascii')) : tlv(Tag.GeneralizedTime, Buffer.from(digits, 'ascii'));
}

export const generalizedTime = (date: Date): Buffer => {
  const iso = date.toISOString();
  return tlv(Tag.GeneralizedTime, Buffer.from(`${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`, 'ascii'));
};

/** [n] EXPLICIT: a constructed context-specific wrapper around one encoding. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);

/** [n] IMPLICIT over a primitive value (its content bytes). */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

/** [n] IMPLICIT over a constructed value (its content bytes). */
export const implicitConstructed = (n: number, content: Uint8Array): Buffer => tlv(0xa0 | n, content);

// ---- decoding ----------------------------------------------------------------------------

export interface Tlv {
  readonly tag: number;
  /** The whole element: tag, length and content. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

/** Reads one element at `offset`; returns it and where the next begins. */
export function readTlv(input: Buffer, offset = 0): { readonly element: Tlv; readonly next: number } {
  if (offset + 2 > input.length) throw new DerError('truncated element');
  const tag = input[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used here');
  let length = input[offset + 1] as number;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw new DerError('indefinite lengths are not DER');
    if (count > 4) throw new DerError('element too long');
    if (offset + 2 + count > input.length) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (input[offset + 2 + i] as number);
    if (length < 0x80 || (count > 1 && input[offset + 2] === 0)) throw new DerError('length not minimally encoded');
    header += count;
  }
  const end = offset + header + length;
  if (end > input.length) throw new DerError('truncated content');
  return { element: { tag, raw: input.subarray(offset, end), content: input.subarray(offset + header, end) }, next: end };
}

/** Parses input that must be exactly one element. */
export function parseOne(input: Buffer, expectedTag?: number): Tlv {
  const { element, next } = readTlv(input);
  if (next !== input.length) throw new DerError('trailing bytes after the element');
  if (expectedTag !== undefined && element.tag !== expectedTag) throw new DerError(`expected tag 0x${expectedTag.toString(16)}, found 0x${element.tag.toString(16)}`);
  return element;
}

/** The elements inside a constructed element, at most `max` of them. */
export function childrenOf(parent: Tlv, max = 64): Tlv[] {
  const children: Tlv[] = [];
  for (let offset = 0; offset < parent.content.length; ) {
    if (children.length >= max) throw new DerError(`more than ${max} elements`);
    const { element, next } = readTlv(parent.content, offset);
    children.push(element);
    offset = next;
  }
  return children;
}

export function expectTag(element: Tlv | undefined, tag: number, what: string): Tlv {
  if (element === undefined || element.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}`);
  return element;
}

export function readOid(element: Tlv): string {
  const bytes = element.content;
  if (element.tag !== Tag.Oid || bytes.length === 0 || ((bytes.at(-1) as number) & 0x80) !== 0) throw new DerError('bad OID');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    if (value === 0 && byte === 0x80) throw new DerError('OID arc not minimally encoded');
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw new DerError('OID arc too large');
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = arcs.shift() as number;
  return [first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80, ...arcs].join('.');
}

export function readBitString(element: Tlv): Buffer {
  if (element.tag !== Tag.BitString || element.content.length === 0) throw new DerError('bad BIT STRING');
  if (element.content[0] !== 0) throw new DerError('BIT STRING with unused bits where whole bytes are expected');
  return element.content.subarray(1);
}

/** A string value of any of the X.520 directory string types, as text. */
export function readString(element: Tlv): string {
  switch (element.tag) {
    case Tag.Utf8String:
      return new TextDecoder('utf-8', { fatal: true }).decode(element.content);
    case Tag.PrintableString:
    case Tag.Ia5String:
      if ([...element.content].some((b) => b > 0x7e || b < 0x20)) throw new DerError('non-printable character in string');
      return element.content.toString('ascii');
    default:
      throw new DerError(`unsupported string type 0x${element.tag.toString(16)}`);
  }
}
