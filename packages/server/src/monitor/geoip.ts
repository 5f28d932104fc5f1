import { readFile } from 'node:fs/promises';
import { cidrContains, parseAddress, parseCidr, type Cidr } from '../access/policy/cidr.js';

/**
 * A GeoIP table for the "new source country" rule, from a CSV file of `cidr,country` lines
 * (`#` comments allowed), e.g. exported from a GeoLite2-Country CSV. The most specific block wins.
 * Fleetward ships no GeoIP data: without FLEETWARD_MONITOR_GEOIP_FILE the country rule is off.
 */
export async function loadGeoIp(file: string): Promise<(address: string) => string | null> {
  const entries: { cidr: Cidr; country: string }[] = [];
  for (const [i, line] of (await readFile(file, 'utf8')).split('\n').entries()) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [block = '', country = ''] = trimmed.split(',').map((s) => s.trim());
    const cidr = parseCidr(block);
    if (typeof cidr === 'string' || !/^[A-Za-z]{2}$/.test(country)) throw new Error(`${file} line ${i + 1}: expected cidr,country (two letters)`);
    entries.push({ cidr, country: country.toUpperCase() });
  }
  entries.sort((a, b) => b.cidr.prefix - a.cidr.prefix);
  return (text) => {
    const address = parseAddress(text);
    if (address === null) return null;
    return entries.find((e) => cidrContains(e.cidr, address))?.country ?? null;
  };
}
