/**
 * os-release(5): `KEY=value` lines, values optionally quoted shell-style. Comments, blank lines and
 * malformed lines are skipped.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!match) continue;
    const value = unquote(match[2] as string);
    if (value !== null) fields[match[1] as string] = value;
  }
  return fields;
}

/** `"a \"b\""` → `a "b"`; `'a b'` → `a b`; a bare word as is; an unterminated quote is no value. */
function unquote(raw: string): string | null {
  const quote = raw[0];
  if (quote === "'") return raw.length >= 2 && raw.endsWith("'") ? raw.slice(1, -1) : null;
  if (quote !== '"') return raw;
  const match = /^"((?:[^"\\]|\\.)*)"$/.exec(raw);
  // Within double quotes, shell escapes only $ " \ and `; other backslashes stay.
  return match ? (match[1] as string).replace(/\\([$"\\`])/g, '$1') : null;
}
