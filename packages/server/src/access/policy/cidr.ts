import { isIPv4, isIPv6 } from 'node:net';

/** An address as bytes: 4 for IPv4, 16 for IPv6. IPv4-mapped IPv6 addresses are stored as IPv4. */
export interface Address {
  readonly bytes: readonly number[];
}

export interface Cidr {
  readonly network: Address;
  readonly prefix: number;
}

/**
 * Parses a source address. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is its IPv4 address, so
 * a dual-stack listener cannot slip past an IPv4 condition; an IPv6 zone (`%eth0`) is ignored.
 * Returns null for anything else.
 */
export function parseAddress(text: string): Address | null {
  const address = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  if (isIPv4(address)) return { bytes: ipv4Bytes(address) };
  if (!isIPv6(address)) return null;
  const bytes = ipv6Bytes(address);
  return isV4Mapped(bytes) ? { bytes: bytes.slice(12) } : { bytes };
}

/**
 * Parses `address/prefix`, refusing what would be ambiguous in a policy: a missing prefix, host bits
 * set below the prefix (`10.0.0.1/8` is a typo more often than a choice), IPv4-mapped networks
 * (write the IPv4 block) and zones. Returns the reason as a string when it refuses.
 */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  if (slash === -1) return 'needs a prefix length, e.g. 192.0.2.0/24 or 2001:db8::/32';
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (addressText.includes('%')) return 'must not carry an IPv6 zone';
  const v4 = isIPv4(addressText);
  if (!v4 && !isIPv6(addressText)) return 'is not an IPv4 or IPv6 address block';
  const bytes = v4 ? ipv4Bytes(addressText) : ipv6Bytes(addressText);
  if (!v4 && isV4Mapped(bytes)) return 'is an IPv4-mapped block: write the IPv4 block instead';
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bytes.length * 8) return `has an invalid prefix length (0-${bytes.length * 8})`;
  const cidr = { network: { bytes }, prefix: Number(prefixText) };
  if (!hostBitsClear(cidr)) return 'has host bits set below the prefix length';
  return cidr;
}

export function cidrContains(cidr: Cidr, address: Address): boolean {
  const network = cidr.network.bytes;
  if (network.length !== address.bytes.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit += 8) {
    const mask = cidr.prefix - bit >= 8 ? 0xff : (0xff << (8 - (cidr.prefix - bit))) & 0xff;
    if (((network[bit / 8] as number) & mask) !== ((address.bytes[bit / 8] as number) & mask)) return false;
  }
  return true;
}

function hostBitsClear(cidr: Cidr): boolean {
  return cidr.network.bytes.every((byte, i) => {
    const bitsKept = Math.min(8, Math.max(0, cidr.prefix - i * 8));
    return (byte & (0xff >> bitsKept)) === 0;
  });
}

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

/** Expands an IPv6 text (node:net has checked it) into 16 bytes, with its embedded IPv4 tail if any. */
function ipv6Bytes(text: string): number[] {
  let body = text;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const [a, b, c, d] = ipv4Bytes(last) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    body = text.slice(0, lastColon + 1);
    // Keep a `::` before the IPv4 part; drop a single separating `:`.
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const gap = body.indexOf('::');
  const words =
    gap === -1
      ? groups(body)
      : (() => {
          const head = groups(body.slice(0, gap));
          const rest = groups(body.slice(gap + 2));
          return [...head, ...Array<number>(8 - tail.length - head.length - rest.length).fill(0), ...rest];
        })();
  return [...words, ...tail].flatMap((word) => [word >> 8, word & 0xff]);
}

function isV4Mapped(bytes: readonly number[]): boolean {
  return bytes.length === 16 && bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}
