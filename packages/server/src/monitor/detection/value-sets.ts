import { cidrContains, parseAddress, parseCidr, type Cidr } from '../../access/policy/cidr.js';

/** The set a set operator compares against: address blocks, port ranges, or strings. */
export type ValueSet =
  | { readonly kind: 'cidrs'; readonly cidrs: readonly Cidr[]; readonly text: readonly string[] }
  | { readonly kind: 'ports'; readonly ranges: readonly (readonly [number, number])[]; readonly text: readonly string[] }
  | { readonly kind: 'strings'; readonly strings: ReadonlySet<string> };

export function cidrSet(blocks: readonly string[]): ValueSet | string {
  const cidrs: Cidr[] = [];
  for (const block of blocks) {
    const cidr = parseCidr(block.includes('/') ? block : `${block}/${block.includes(':') ? 128 : 32}`);
    if (typeof cidr === 'string') return `${block} ${cidr}`;
    cidrs.push(cidr);
  }
  return { kind: 'cidrs', cidrs, text: blocks };
}

/** Ports as numbers or `low-high` ranges. */
export function portSet(items: readonly (number | string)[]): ValueSet | string {
  const ranges: [number, number][] = [];
  for (const item of items) {
    const match = typeof item === 'number' ? [String(item), String(item), String(item)] : /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    const low = Number(match?.[1]);
    const high = Number(match?.[2] ?? match?.[1]);
    if (match === null || !Number.isInteger(low) || !Number.isInteger(high) || low < 0 || high > 65_535 || low > high) return `${String(item)} is not a port (0-65535) or a range low-high`;
    ranges.push([low, high]);
  }
  return { kind: 'ports', ranges, text: items.map(String) };
}

export function stringSet(items: readonly string[]): ValueSet {
  return { kind: 'strings', strings: new Set(items) };
}

/** Whether one item of a metric's value is in the set. An item of the wrong shape is never in it. */
export function setHas(set: ValueSet, item: number | string): boolean {
  switch (set.kind) {
    case 'strings':
      return set.strings.has(String(item));
    case 'ports': {
      // `tcp/22` (a listening socket) counts by its port.
      const port = typeof item === 'number' ? item : Number(item.slice(item.indexOf('/') + 1));
      return set.ranges.some(([low, high]) => port >= low && port <= high);
    }
    case 'cidrs': {
      const address = typeof item === 'string' ? parseAddress(item) : null;
      return address !== null && set.cidrs.some((cidr) => cidrContains(cidr, address));
    }
    default: {
      const never: never = set;
      return never;
    }
  }
}

/**
 * Set operators on a metric (a list, or a single value as a list of one): `in` is violated by any
 * item in the set (a destination in a blocklist), `not-in` by any item outside it (a listening
 * port not allowed). Returns the violating items (empty: not violated).
 */
export function setViolations(operator: 'in' | 'not-in', set: ValueSet, items: readonly (number | string)[]): (number | string)[] {
  const inSet = operator === 'in';
  return items.filter((item) => setHas(set, item) === inSet);
}
