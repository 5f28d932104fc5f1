import { parseAddress } from '../policy/cidr.js';

/**
 * The key a source address is counted under: an IPv4 address as itself (an IPv4-mapped IPv6
 * address as its IPv4 address, so a dual-stack listener cannot double a source's budget), and an
 * IPv6 address by its /64 prefix, the block a single site or attacker usually holds (RFC 6177):
 * counting single IPv6 addresses would let one host rotate through 2^64 of them. Anything
 * unparseable is counted as itself.
 */
export function sourceKey(address: string): string {
  const parsed = parseAddress(address);
  if (parsed === null) return address;
  const bytes = parsed.bytes;
  if (bytes.length === 4) return bytes.join('.');
  let prefix = '';
  for (let i = 0; i < 8; i += 2) prefix += `${(((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16)}:`;
  return `${prefix}:/64`;
}
