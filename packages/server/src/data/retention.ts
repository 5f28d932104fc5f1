import { FleetwardError } from '@fleetward/protocol';

/** The longest retention a contract may declare: ten years. */
export const MAX_RETENTION_SECONDS = 10 * 366 * 86_400;

const DURATION = /^P(?:(\d{1,4})Y)?(?:(\d{1,4})M)?(?:(\d{1,4})W)?(?:(\d{1,5})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,7})M)?(?:(\d{1,9})S)?)?$/;

/**
 * A retention period in seconds, from a whole number of days or an ISO 8601 duration
 * (`P30D`, `PT12H`, `P1Y2M`). Years count 365 days and months 30 (a retention is an upper bound
 * an operator declares, not a calendar date). Zero, negative, fractional or above ten years is refused.
 */
export function parseRetention(value: unknown, field: string): number {
  let seconds: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1) throw invalid(field, 'a whole number of days of at least 1');
    seconds = value * 86_400;
  } else if (typeof value === 'string') {
    const match = DURATION.exec(value);
    if (match === null || value === 'P' || value.endsWith('T')) throw invalid(field, 'an ISO 8601 duration such as P30D or PT12H, or a number of days');
    const [y, mo, w, d, h, mi, s] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number, number];
    seconds = ((y * 365 + mo * 30 + w * 7 + d) * 24 + h) * 3600 + mi * 60 + s;
  } else {
    throw invalid(field, 'present: an ISO 8601 duration or a number of days');
  }
  if (seconds < 1 || seconds > MAX_RETENTION_SECONDS) throw invalid(field, `between 1 second and ${MAX_RETENTION_SECONDS / 86_400} days`);
  return seconds;
}

/** The retention as people read it: days when whole, else hours, else seconds. */
export function describeRetention(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${seconds} s`;
}

function invalid(field: string, expected: string): FleetwardError {
  return new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', `${field}: retention must be ${expected}`, { path: field });
}
