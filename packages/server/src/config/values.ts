import { isIP } from 'node:net';

/**
 * Parsers for configuration values. Each takes what a source holds (a string from the
 * environment or a flag, a JSON value from the config file) and returns the typed value, or
 * undefined when it does not fit; the caller names the key, the value and what was expected.
 */
export type ValueParser<T> = (raw: unknown) => T | undefined;

export function integer(min: number, max: number): ValueParser<number> {
  return (raw) => {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
  };
}

/** A port, or null (empty) for "not served". */
export const optionalPort: ValueParser<number | null> = (raw) => (raw === null || raw === '' ? null : integer(0, 65535)(raw));

export function oneOf<const V extends string>(values: readonly V[]): ValueParser<V> {
  return (raw) => (typeof raw === 'string' && (values as readonly string[]).includes(raw) ? (raw as V) : undefined);
}

const DNS_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function isHostName(value: string): boolean {
  return isIP(value) !== 0 || DNS_NAME.test(value);
}

export const hostName: ValueParser<string> = (raw) => (typeof raw === 'string' && isHostName(raw) ? normalizeHost(raw) : undefined);

/** One spelling per host: DNS names in lower case, IPv6 addresses in their short form (`::1`). */
export function normalizeHost(value: string): string {
  return isIP(value) === 6 ? new URL(`http://[${value}]/`).hostname.slice(1, -1) : value.toLowerCase();
}

/** A comma-separated list (environment, flags) or a JSON array (config file) of host names or IPs. */
export const hostNameList: ValueParser<readonly string[]> = (raw) => {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',').map((s) => s.trim()) : undefined;
  if (!items || items.length === 0 || items.length > 100) return undefined;
  const names = items.filter((item): item is string => typeof item === 'string' && isHostName(item));
  return names.length === items.length ? Object.freeze([...new Set(names.map(normalizeHost))]) : undefined;
};

export const postgresUrl: ValueParser<string | null> = (raw) => {
  if (raw === null || raw === '') return null;
  if (typeof raw !== 'string') return undefined;
  try {
    const url = new URL(raw);
    return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '' ? raw : undefined;
  } catch {
    return undefined;
  }
};

export const httpsUrl: ValueParser<string | null> = (raw) => {
  if (raw === null || raw === '') return null;
  if (typeof raw !== 'string') return undefined;
  try {
    const url = new URL(raw);
    return url.protocol === 'https:' && url.search === '' && url.hash === '' && url.username === '' ? raw.replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
};

export const optionalPath: ValueParser<string | null> = (raw) => {
  if (raw === null || raw === '') return null;
  return typeof raw === 'string' && raw.startsWith('/') && raw.length <= 4096 && !/[\p{Cc}]/u.test(raw) ? raw : undefined;
};

export function optionalText(maxLength: number): ValueParser<string | null> {
  return (raw) => (raw === null || raw === '' ? null : text(maxLength)(raw));
}

export const sqlIdentifier: ValueParser<string> = (raw) =>
  typeof raw === 'string' && /^[a-z_][a-z0-9_]{0,62}$/.test(raw) ? raw : undefined;

export const text = (maxLength: number): ValueParser<string> => (raw) =>
  typeof raw === 'string' && raw.trim().length > 0 && raw.length <= maxLength && !/[\p{Cc}]/u.test(raw) ? raw : undefined;

/** Hides the password of a connection URL so it can be printed or logged. */
export const redisUrl: ValueParser<string | null> = (raw) => {
  if (raw === null || raw === '') return null;
  if (typeof raw !== 'string') return undefined;
  try {
    const url = new URL(raw);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' ? raw : undefined;
  } catch {
    return undefined;
  }
};

export function redactUrlPassword(value: string): string {
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = '***';
    for (const key of [...url.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) url.searchParams.set(key, '***');
    }
    return url.toString();
  } catch {
    return '***';
  }
}
