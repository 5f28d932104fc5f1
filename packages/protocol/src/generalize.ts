/**
 * Generalizing transforms: pure functions that coarsen a value so it still serves its purpose
 * (a district, not a doorstep; an hour, not a second). Each is idempotent and never moves a value
 * by more than its granularity (property-tested in data-transforms.test.ts). Shared: the server applies
 * them on ingest, the agent before a reading leaves the device, with the same results.
 */

/** RFC 3339 §5.6 date-time, what `format: "date-time"` accepts and `bucketDateTime` takes; linear (no nested quantifiers), so no catastrophic backtracking. */
export const RFC3339_DATE_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/** Rounds to `decimals` decimal places (0-10), half away from zero, as `toFixed` does. */
export function roundTo(value: number, decimals: number): number {
  const rounded = Number(value.toFixed(decimals));
  // -0 and 0 are one value in JSON.
  return rounded === 0 ? 0 : rounded;
}

/** The lower bound of the bucket of width `size` (> 0) holding `value`: 0, size, 2·size… */
export function bucketOf(value: number, size: number): number {
  const index = Math.floor(value / size);
  const lower = index * size;
  // Floating point can put the product just above the value (0.3 / 0.1 → 2.9999…): step back.
  const bucket = lower > value ? (index - 1) * size : lower;
  return bucket === 0 ? 0 : bucket;
}

/** Floors epoch seconds to a multiple of `seconds`. */
export function bucketEpochSeconds(value: number, seconds: number): number {
  return Math.floor(value / seconds) * seconds;
}

/** Floors an RFC 3339 date-time to a multiple of `seconds` since the epoch, as `YYYY-MM-DDTHH:MM:SSZ` (UTC). */
export function bucketDateTime(value: string, seconds: number): string {
  // Fast path for a UTC time (`…Z`, validated as RFC 3339 before) and a minute, hour or day: cut the text.
  const last = value.charCodeAt(value.length - 1);
  if (last === 0x5a || last === 0x7a) {
    if (seconds === 60) return `${value.slice(0, 10)}T${value.slice(11, 17)}00Z`;
    if (seconds === 3600) return `${value.slice(0, 10)}T${value.slice(11, 14)}00:00Z`;
    if (seconds === 86_400) return `${value.slice(0, 10)}T00:00:00Z`;
  }
  const ms = Date.parse(value);
  const floored = Math.floor(ms / (seconds * 1000)) * seconds * 1000;
  // toISOString is `YYYY-MM-DDTHH:MM:SS.sssZ` for years 0-9999, the range date-time allows.
  return `${new Date(floored).toISOString().slice(0, 19)}Z`;
}

/** The first `length` code points of `value` (never half a surrogate pair). */
export function truncate(value: string, length: number): string {
  if (value.length <= length) return value;
  let units = 0;
  for (let points = 0; points < length && units < value.length; points++) {
    const c = value.charCodeAt(units);
    units += c >= 0xd800 && c <= 0xdbff && units + 1 < value.length && isLowSurrogate(value.charCodeAt(units + 1)) ? 2 : 1;
  }
  return value.slice(0, units);
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
