import type { MaintenanceWindow } from '../config/agent-config.js';

const MINUTES_PER_DAY = 24 * 60;

/** Minutes after midnight UTC of an `HH:MM` time (already validated by the configuration). */
function minutes(clock: string): number {
  const [h, m] = clock.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/**
 * Whether `now` lies in the daily window [start, end) in UTC. A window whose end is before its
 * start wraps past midnight (22:00–04:00 is open at 23:30 and at 03:59, closed at 04:00).
 * No window: always open.
 */
export function inMaintenanceWindow(window: MaintenanceWindow | null, now: Date): boolean {
  if (window === null) return true;
  const at = now.getUTCHours() * 60 + now.getUTCMinutes();
  const start = minutes(window.start);
  const end = minutes(window.end);
  return start < end ? at >= start && at < end : at >= start || at < end;
}

/** When the window next opens (now, if it is open). */
export function nextWindowOpening(window: MaintenanceWindow | null, now: Date): Date {
  if (inMaintenanceWindow(window, now) || window === null) return now;
  const at = now.getUTCHours() * 60 + now.getUTCMinutes();
  const wait = (minutes(window.start) - at + MINUTES_PER_DAY) % MINUTES_PER_DAY;
  const opening = new Date(now.getTime() + wait * 60_000);
  opening.setUTCSeconds(0, 0);
  return opening;
}
