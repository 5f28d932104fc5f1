import { FleetwardError } from '@fleetward/protocol';

/** `key=value` pairs from a repeatable option into an object; anything else is a usage error. */
export function keyValues(values: unknown, option: string): Record<string, string> {
  const list = Array.isArray(values) ? (values as unknown[]) : values === undefined ? [] : [values];
  return Object.fromEntries(
    list.map((item) => {
      const text = String(item);
      const at = text.indexOf('=');
      if (at < 1) throw new FleetwardError('FW_ERR_USAGE', `${option} takes key=value, not ${JSON.stringify(text)}`);
      return [text.slice(0, at), text.slice(at + 1)];
    }),
  );
}

export function strings(values: unknown): string[] {
  if (Array.isArray(values)) return values.map(String);
  return typeof values === 'string' ? [values] : [];
}

export function positiveInteger(value: unknown, option: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new FleetwardError('FW_ERR_USAGE', `${option} must be a whole number between 1 and ${max}`);
  return n;
}

export function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
