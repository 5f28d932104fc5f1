import { invalid, quote } from './invalid.js';
import { ATTRIBUTE_KEY_PATTERN } from './limits.js';
import type { ConnectionFacts } from './types.js';

/** The policy variables (docs/policies.md "Variables"); `thing.attr.KEY` takes any registry attribute key. */
export type VariableName = 'thing.name' | 'thing.type' | 'cert.cn' | 'cert.serial' | `thing.attr.${string}`;

const FIXED_VARIABLES: ReadonlySet<string> = new Set(['thing.name', 'thing.type', 'cert.cn', 'cert.serial']);
const ATTRIBUTE_PREFIX = 'thing.attr.';

/** A resource split into literal text and variables, e.g. `dev-${thing.name}` → text `dev-`, variable `thing.name`. */
export type TemplatePart = { readonly text: string } | { readonly variable: VariableName };

export function isVariableName(name: string): name is VariableName {
  if (FIXED_VARIABLES.has(name)) return true;
  return name.startsWith(ATTRIBUTE_PREFIX) && ATTRIBUTE_KEY_PATTERN.test(name.slice(ATTRIBUTE_PREFIX.length));
}

/**
 * Splits text into literal parts and `${...}` variables. A `$` not followed by `{` is literal (so
 * `$fw/...` needs no escaping); `${` must open a known variable and be closed.
 */
export function parseTemplate(text: string, path: string): readonly TemplatePart[] {
  const parts: TemplatePart[] = [];
  let at = 0;
  for (let open = text.indexOf('${'); open !== -1; open = text.indexOf('${', at)) {
    if (open > at) parts.push({ text: text.slice(at, open) });
    const close = text.indexOf('}', open + 2);
    if (close === -1) throw invalid(path, `unterminated variable: ${quote(text.slice(open))}`);
    const name = text.slice(open + 2, close);
    if (!isVariableName(name)) {
      throw invalid(path, `unknown variable \${${name.slice(0, 80)}}: use \${thing.name}, \${thing.type}, \${thing.attr.KEY}, \${cert.cn} or \${cert.serial}`, { variable: name.slice(0, 140) });
    }
    parts.push({ variable: name });
    at = close + 1;
  }
  if (at < text.length) parts.push({ text: text.slice(at) });
  return parts;
}

/** The variable's value for this connection, or undefined when it has none. */
export function resolveVariable(name: VariableName, facts: ConnectionFacts): string | undefined {
  switch (name) {
    case 'thing.name':
      return facts.thing?.name;
    case 'thing.type':
      return facts.thing?.type ?? undefined;
    case 'cert.cn':
      return facts.cert?.cn;
    case 'cert.serial':
      return facts.cert?.serial;
    default: {
      const attributes = facts.thing?.attributes;
      const key = name.slice(ATTRIBUTE_PREFIX.length);
      // Own properties only: a key such as `constructor` must not resolve from the prototype.
      return attributes !== undefined && Object.hasOwn(attributes, key) ? attributes[key] : undefined;
    }
  }
}

export function variablesOf(parts: readonly TemplatePart[]): VariableName[] {
  return parts.flatMap((p) => ('variable' in p ? [p.variable] : []));
}
